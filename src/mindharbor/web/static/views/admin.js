// Admin and compliance panels: invite staff, change care teams, the audit log with filters and
// the verify-audit result, emergency grants. Only the server decides who may use them.
import { ErrorText, Parse, html, useAction, useEffect, useState, when } from './common.js';

export function AdminPanel() {
  const [busy, error, run] = useAction();
  const [invite, setInvite] = useState(null);
  const [team, setTeam] = useState(null);
  const submitInvite = (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    run(async () =>
      setInvite(await Parse.Cloud.run('createInvitation', { role: form.get('role'), email: form.get('email') || undefined }))
    );
  };
  const change = (fn) => (e) => {
    e.preventDefault();
    const form = new FormData(e.target.form || e.target);
    run(async () => {
      await Parse.Cloud.run(fn, { patientId: form.get('patientId'), providerId: form.get('providerId') });
      setTeam(`${fn === 'assignProvider' ? 'Assigned' : 'Unassigned'}.`);
    });
  };
  return html`<section aria-labelledby="admin-title">
    <h2 id="admin-title">Administration</h2>
    <${ErrorText} error=${error} />
    <div class="grid2">
      <form class="card" onSubmit=${submitInvite} aria-labelledby="invite-title">
        <h3 id="invite-title">Invite staff</h3>
        <label>Role<select name="role">
          <option value="provider">Provider</option><option value="admin">Admin</option><option value="compliance">Compliance</option>
        </select></label>
        <label>Email (optional)<input name="email" type="email" /></label>
        <button disabled=${busy}>Create invitation</button>
        ${invite && html`<p role="status">Invitation for ${invite.role}, valid until ${when(invite.expiresAt)}:
          <code>${invite.invitationToken}</code> (shown once; the new colleague signs up with it).</p>`}
      </form>
      <form class="card" onSubmit=${change('assignProvider')} aria-labelledby="team-title">
        <h3 id="team-title">Care team</h3>
        <label>Patient chart id<input name="patientId" required /></label>
        <label>Provider user id<input name="providerId" required /></label>
        <button disabled=${busy}>Assign provider</button>
        <button type="button" class="secondary" disabled=${busy} onClick=${change('unassignProvider')}>Unassign provider</button>
        ${team && html`<p role="status">${team}</p>`}
      </form>
    </div>
  </section>`;
}

export function CompliancePanel() {
  const [entries, setEntries] = useState([]);
  const [verify, setVerify] = useState(null);
  const [grants, setGrants] = useState([]);
  const [busy, error, run] = useAction();
  const search = (filters) =>
    run(async () => {
      const q = new Parse.Query('AuditLog').descending('createdAt').limit(100);
      if (filters.action) q.equalTo('action', filters.action);
      if (filters.entityType) q.equalTo('entityType', filters.entityType);
      if (filters.entityId) q.equalTo('entityId', filters.entityId);
      if (filters.since) q.greaterThanOrEqualTo('createdAt', new Date(filters.since));
      setEntries(await q.find());
    });
  useEffect(() => {
    search({});
    run(async () => setGrants(await Parse.Cloud.run('listEmergencyGrants')));
  }, []);
  const submit = (e) => {
    e.preventDefault();
    search(Object.fromEntries(new FormData(e.target)));
  };
  return html`<section aria-labelledby="compliance-title">
    <h2 id="compliance-title">Compliance</h2>
    <${ErrorText} error=${error} />
    <div class="card">
      <h3>Audit log integrity</h3>
      <button disabled=${busy} onClick=${() => run(async () => setVerify(await Parse.Cloud.run('verifyAudit')))}>Verify audit log</button>
      ${verify && html`<p role="status">${verify.ok
        ? `Audit log verified: ${verify.checked} entries, ${verify.sealedBlocks} sealed blocks.`
        : `AUDIT LOG FAILED VERIFICATION: ${verify.problems.join('; ')}`}</p>`}
    </div>
    <form class="card" onSubmit=${submit} aria-labelledby="audit-title">
      <h3 id="audit-title">Audit log</h3>
      <div class="grid2">
        <label>Action<input name="action" placeholder="phi.read" /></label>
        <label>Entity type<input name="entityType" placeholder="PatientProfile" /></label>
        <label>Entity id<input name="entityId" /></label>
        <label>Since<input name="since" type="date" /></label>
      </div>
      <button disabled=${busy}>Filter</button>
    </form>
    <table><caption>Audit entries (newest first, up to 100)</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Entity</th><th scope="col">Summary</th></tr></thead>
      <tbody>${entries.map(
        (e) => html`<tr><td>${when(e.createdAt)}</td><td>${(e.get('actor') && e.get('actor').id) || '—'}</td>
          <td>${e.get('action')}</td><td>${e.get('entityType')} ${e.get('entityId')}</td><td>${e.get('summary')}</td></tr>`
      )}</tbody></table>
    <div class="card">
      <h3>Emergency access grants</h3>
      ${grants.length === 0 ? html`<p>No emergency access granted.</p>` : html`<table><caption class="sr-only">Emergency grants</caption>
        <thead><tr><th scope="col">Granted</th><th scope="col">Ends</th><th scope="col">Provider</th><th scope="col">Chart</th><th scope="col">Reason</th></tr></thead>
        <tbody>${grants.map(
          (g) => html`<tr><td>${when(g.createdAt)}</td><td>${when(g.expiresAt)}</td><td>${g.userId}</td><td>${g.patientId}</td><td>${g.reason}</td></tr>`
        )}</tbody></table>`}
    </div>
  </section>`;
}
