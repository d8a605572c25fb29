// The clinic workspace (/clinic/): sign in with mandatory MFA enrolment, caseload (open risk
// first), inbox, care alerts, patient charts, break-the-glass, and admin/compliance panels.
import { AdminPanel, CompliancePanel } from './admin.js';
import { Chart } from './chart.js';
import {
  ErrorText,
  IdleGuard,
  Parse,
  SignIn,
  Tabs,
  config,
  html,
  logOut,
  pointer,
  problem,
  render,
  takeNotice,
  useAction,
  useEffect,
  useLive,
  useState,
  when,
} from './common.js';

const SEVERITY_RANK = { severe: 5, high: 5, 'moderately severe': 4, moderate: 3, mild: 2, low: 2, minimal: 1, none: 0 };

/** TOTP enrolment: QR code of the otpauth URI (drawn here, offline), then recovery codes once. */
function EnrolMfa({ onDone }) {
  const [enrolment, setEnrolment] = useState(null);
  const [codes, setCodes] = useState(null);
  const [busy, error, run] = useAction();
  useEffect(() => {
    run(async () => setEnrolment(await Parse.Cloud.run('enrollMfa')));
  }, []);
  if (codes) {
    return html`<section class="card narrow" aria-labelledby="codes-title">
      <h2 id="codes-title">Save your recovery codes</h2>
      <p>Each code signs you in once if you lose your authenticator. They are shown only now.</p>
      <ul class="codes" aria-label="Recovery codes">${codes.map((c) => html`<li>${c}</li>`)}</ul>
      <button onClick=${onDone}>I have saved these codes</button>
    </section>`;
  }
  let qr = null;
  if (enrolment) {
    const code = window.qrcode(0, 'M');
    code.addData(enrolment.uri);
    code.make();
    qr = code.createDataURL(4, 8);
  }
  const submit = (e) => {
    e.preventDefault();
    const token = new FormData(e.target).get('code');
    run(async () => setCodes((await Parse.Cloud.run('confirmMfa', { code: token })).recoveryCodes));
  };
  return html`<form class="card narrow" onSubmit=${submit} aria-labelledby="mfa-title">
    <h2 id="mfa-title">Set up two-step sign-in</h2>
    <p>Your role requires a second factor. Scan this code with an authenticator app, then enter the 6-digit code it shows.</p>
    ${qr && html`<p class="qr"><img src=${qr} alt="QR code of your authenticator key" /></p>
      <p>Or enter this key by hand: <code id="mfa-secret">${enrolment.secret}</code></p>`}
    <label>Code from your app<input name="code" inputmode="numeric" autocomplete="one-time-code" required /></label>
    <${ErrorText} error=${error} />
    <button disabled=${busy || !enrolment}>Confirm</button>
  </form>`;
}

function useCaseload() {
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const load = async () => {
    try {
      const profiles = await new Parse.Query('PatientProfile').ascending('displayName').limit(500).find();
      const ids = profiles.map((p) => pointer('PatientProfile', p.id));
      const [scored, logs, alerts] = await Promise.all([
        new Parse.Query('IntakeAssessment').containedIn('patient', ids).containedIn('status', ['final', 'amended'])
          .descending('createdAt').limit(1000).find(),
        new Parse.Query('CrisisInterventionLog').containedIn('patient', ids).containedIn('status', ['open', 'active'])
          .limit(1000).find(),
        new Parse.Query('CareAlert').descending('createdAt').limit(100).find(),
      ]);
      const latest = {};
      for (const a of scored) if (!latest[a.get('patient').id]) latest[a.get('patient').id] = a;
      const open = {};
      for (const l of logs) open[l.get('patient').id] = (open[l.get('patient').id] || 0) + 1;
      const list = profiles.map((p) => ({ profile: p, latest: latest[p.id], open: open[p.id] || 0 }));
      const rank = (r) => SEVERITY_RANK[r.latest && r.latest.get('severity')] || 0;
      list.sort((a, b) => b.open - a.open || rank(b) - rank(a));
      setRows({ list, alerts, names: Object.fromEntries(profiles.map((p) => [p.id, p.get('displayName')])) });
    } catch (e) {
      setError(problem(e));
    }
  };
  useEffect(() => {
    load();
  }, []);
  useLive(
    () => ['CareAlert', 'CrisisInterventionLog', 'IntakeAssessment', 'PatientProfile'].map((c) => new Parse.Query(c)),
    load,
    []
  );
  return [rows, error];
}

function Caseload({ rows, onOpen }) {
  return html`<section class="card" aria-labelledby="caseload-title">
    <h2 id="caseload-title">Caseload</h2>
    ${rows.list.length === 0 ? html`<p>No patients assigned to you.</p>` : html`<table><caption class="sr-only">Assigned patients, open risk first</caption>
      <thead><tr><th scope="col">Patient</th><th scope="col">Latest result</th><th scope="col">Open crisis logs</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${rows.list.map(
        (r) => html`<tr><td>${r.profile.get('displayName')}</td>
          <td>${r.latest ? `${r.latest.get('instrument')}: ${r.latest.get('severity')}` : '—'}</td>
          <td>${r.open > 0 ? html`<span class="flag">${r.open} open</span>` : '0'}</td>
          <td><button onClick=${() => onOpen(r.profile.id)} aria-label=${`Open chart of ${r.profile.get('displayName')}`}>Open chart</button></td></tr>`
      )}</tbody></table>`}
  </section>`;
}

function Alerts({ rows, onOpen }) {
  return html`<section class="card" aria-labelledby="alerts-title">
    <h2 id="alerts-title">Care alerts</h2>
    ${rows.alerts.length === 0 ? html`<p>No alerts.</p>` : html`<ul aria-live="polite">${rows.alerts.map(
      (a) => html`<li><span class="flag">${a.get('kind')} alert, ${a.get('severity')}</span> for
        ${rows.names[a.get('patient').id] || 'a patient'} · ${when(a.createdAt)}
        <button onClick=${() => onOpen(a.get('patient').id)}>Open chart</button></li>`
    )}</ul>`}
  </section>`;
}

function Inbox({ names, onOpen }) {
  const [threads, setThreads] = useState([]);
  const [, error, run] = useAction();
  const load = () => run(async () => setThreads(await Parse.Cloud.run('listConversations', { limit: 100 })));
  useEffect(() => {
    load();
  }, []);
  useLive(() => [new Parse.Query('Message')], load, []);
  const unread = threads.reduce((n, t) => n + t.unreadCount, 0);
  return html`<section class="card" aria-labelledby="inbox-title">
    <h2 id="inbox-title">Inbox <span class="badge">${unread} unread</span></h2>
    <${ErrorText} error=${error} />
    ${threads.length === 0 ? html`<p>No conversations.</p>` : html`<ul>${threads.map(
      (t) => {
        const patientId = t.patient.id || t.patient.objectId;
        return html`<li>${names[patientId] || 'Patient'}: ${t.lastMessage.body.slice(0, 60)}
          ${t.unreadCount > 0 && html`<span class="badge">${t.unreadCount} unread</span>`}
          <button onClick=${() => onOpen(patientId)}>Open chart</button></li>`;
      }
    )}</ul>`}
  </section>`;
}

function EmergencyAccess({ onGranted }) {
  const [busy, error, run] = useAction();
  const submit = (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    const patientId = form.get('patientId').trim();
    run(async () => {
      const grant = await Parse.Cloud.run('requestEmergencyAccess', { patientId, reason: form.get('reason') });
      onGranted(patientId, grant);
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-labelledby="btg-title">
    <h2 id="btg-title">Emergency access (break the glass)</h2>
    <p class="hint">For a patient outside your care team, in an emergency only. Access is time-limited, recorded and reviewed by compliance.</p>
    <label>Patient chart id<input name="patientId" required /></label>
    <label>Reason (required)<input name="reason" required /></label>
    <${ErrorText} error=${error} />
    <button class="danger" disabled=${busy}>Request emergency access</button>
  </form>`;
}

function Workspace({ user, roles }) {
  const [rows, error] = useCaseload();
  const [tab, setTab] = useState('caseload');
  const [chart, setChart] = useState(null);
  const open = (patientId, grant = null) => setChart({ patientId, grant });
  const tabs = [['caseload', 'Caseload'], ['inbox', 'Inbox'], ['alerts', 'Care alerts'], ['emergency', 'Emergency access']];
  if (roles.includes('admin')) tabs.push(['admin', 'Administration']);
  if (roles.includes('admin') || roles.includes('compliance')) tabs.push(['compliance', 'Compliance']);
  const alertCount = rows ? rows.alerts.length : 0;
  return html`<${IdleGuard} />
    <header class="top">
      <p class="brand">${config.clinic} · clinic workspace</p>
      <p>Signed in as ${user.get('username')} (${roles.join(', ')})</p>
      <button class="secondary" onClick=${() => logOut()}>Sign out</button>
    </header>
    <${Tabs} label="Workspace sections" current=${chart ? null : tab} onSelect=${(t) => { setChart(null); setTab(t); }}
      tabs=${tabs.map(([id, text]) => [id, id === 'alerts' && alertCount ? `${text} (${alertCount})` : text])} />
    <main id="main">
      <h1 class="sr-only">Clinic workspace</h1>
      <${ErrorText} error=${error} />
      ${chart
        ? html`<${Chart} me=${user} patientId=${chart.patientId} grant=${chart.grant} onClose=${() => setChart(null)} />`
        : html`
          ${tab === 'caseload' && rows && html`<${Caseload} rows=${rows} onOpen=${open} /><${Alerts} rows=${rows} onOpen=${open} />`}
          ${tab === 'alerts' && rows && html`<${Alerts} rows=${rows} onOpen=${open} />`}
          ${tab === 'inbox' && html`<${Inbox} names=${rows ? rows.names : {}} onOpen=${open} />`}
          ${tab === 'emergency' && html`<${EmergencyAccess} onGranted=${open} />`}
          ${tab === 'admin' && html`<${AdminPanel} />`}
          ${tab === 'compliance' && html`<${CompliancePanel} />`}`}
    </main>`;
}

function Signed({ user }) {
  const [mfaNeeded, setMfaNeeded] = useState(Boolean(user.get('mfaEnrollmentRequired')));
  const [roles, setRoles] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (mfaNeeded) return;
    Parse.Cloud.run('myRoles')
      .then((found) => setRoles(found.roles))
      .catch((e) => setError(problem(e)));
  }, [mfaNeeded]);
  if (mfaNeeded) return html`<main id="main"><h1>${config.clinic} clinic workspace</h1><${EnrolMfa} onDone=${() => setMfaNeeded(false)} /></main>`;
  if (error) return html`<main id="main"><${ErrorText} error=${error} /></main>`;
  if (!roles) return html`<main id="main"><p>Loading…</p></main>`;
  if (!roles.some((r) => r !== 'patient')) {
    return html`<main id="main"><h1>Clinic workspace</h1><p>This workspace is for clinic staff. Patients use the
      <a href="/app/">patient portal</a>.</p><button onClick=${() => logOut()}>Sign out</button></main>`;
  }
  return html`<${Workspace} user=${user} roles=${roles} />`;
}

function App() {
  const [user, setUser] = useState(Parse.User.current());
  const [notice] = useState(takeNotice());
  return html`<a class="skip" href="#main">Skip to content</a>
    ${notice && html`<p class="notice" role="status">${notice}</p>`}
    ${user
      ? html`<${Signed} user=${user} />`
      : html`<main id="main"><h1>${config.clinic} clinic workspace</h1><${SignIn} staff=${true} onSignedIn=${setUser} /></main>`}`;
}

const root = document.getElementById('root');
root.textContent = '';
render(html`<${App} />`, root);
