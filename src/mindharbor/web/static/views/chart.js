// The patient chart in the clinic workspace: profile, assessments with versions (publish, amend
// with a reason, entered-in-error), crisis logs with their lifecycle and history, appointments
// and messages. The server decides who may do what; errors are shown as it words them.
import { ErrorText, Parse, html, pointer, problem, useAction, useEffect, useLive, useState, when } from './common.js';
import { Conversations } from './messages.js';

const NEXT = { open: 'active', active: 'resolved', resolved: 'closed' };
const patientQuery = (cls, id) => new Parse.Query(cls).equalTo('patient', pointer('PatientProfile', id));

export function Chart({ me, patientId, grant, onClose }) {
  const [chart, setChart] = useState(null);
  const [error, setError] = useState(null);
  const load = async () => {
    try {
      const profile = await new Parse.Query('PatientProfile').get(patientId);
      const [assessments, versions, logs, events, appointments] = await Promise.all([
        patientQuery('IntakeAssessment', patientId).descending('createdAt').limit(200).find(),
        patientQuery('AssessmentVersion', patientId).descending('createdAt').limit(500).find(),
        patientQuery('CrisisInterventionLog', patientId).descending('createdAt').limit(100).find(),
        patientQuery('CrisisLogEvent', patientId).ascending('createdAt').limit(1000).find(),
        patientQuery('Appointment', patientId).descending('startAt').limit(100).find(),
      ]);
      setChart({ profile, assessments, versions, logs, events, appointments });
      setError(null);
    } catch (e) {
      setChart(null);
      setError(e.code === Parse.Error.OBJECT_NOT_FOUND ? 'This chart is not available to you (the server refused it).' : problem(e));
    }
  };
  useEffect(() => {
    load();
  }, [patientId, grant && grant.expiresAt]);
  useLive(
    () => ['IntakeAssessment', 'CrisisInterventionLog', 'CrisisLogEvent', 'Appointment'].map((c) => patientQuery(c, patientId)),
    load,
    [patientId]
  );
  return html`<section aria-labelledby="chart-title">
    <h2 id="chart-title">Patient chart${chart ? `: ${chart.profile.get('displayName')}` : ''}</h2>
    <button class="secondary" onClick=${onClose}>Back to caseload</button>
    ${grant && html`<${Countdown} grant=${grant} onEnd=${load} />`}
    <${ErrorText} error=${error} />
    ${chart && html`
      <div class="card"><dl>
        <dt>Record number</dt><dd>${chart.profile.get('medicalRecordNumber')}</dd>
        <dt>Chart id</dt><dd>${chart.profile.id}</dd>
        ${chart.profile.get('dateOfBirth') && html`<dt>Date of birth</dt><dd>${chart.profile.get('dateOfBirth').toLocaleDateString()}</dd>`}
      </dl></div>
      <${CrisisLogs} patientId=${patientId} logs=${chart.logs} events=${chart.events} reload=${load} />
      <${Assessments} patientId=${patientId} assessments=${chart.assessments} versions=${chart.versions} reload=${load} />
      <${Appointments} me=${me} patientId=${patientId} appointments=${chart.appointments} reload=${load} />
      <${Conversations} me=${me} patient=${chart.profile} to=${chart.profile.get('user').id}
        names=${{ [chart.profile.get('user').id]: chart.profile.get('displayName') }} />`}
  </section>`;
}

function Countdown({ grant, onEnd }) {
  const end = new Date(grant.expiresAt).getTime();
  const [left, setLeft] = useState(Math.max(0, end - Date.now()));
  useEffect(() => {
    const t = setInterval(() => {
      const now = Math.max(0, end - Date.now());
      setLeft(now);
      if (now === 0) {
        clearInterval(t);
        setTimeout(onEnd, 1500); // ask the server again: it has ended the grant by now
      }
    }, 1000);
    return () => clearInterval(t);
  }, [end]);
  const s = Math.ceil(left / 1000);
  return html`<p class="card countdown" role="timer" aria-live="off">
    ${s > 0 ? `Emergency access ends in ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}` : 'Emergency access has ended.'}
  </p>`;
}

function ReasonForm({ label, onSubmit, button }) {
  const [busy, error, run] = useAction();
  return html`<form onSubmit=${(e) => {
    e.preventDefault();
    const form = e.target;
    const reason = new FormData(form).get('reason');
    run(async () => {
      await onSubmit(reason);
      form.reset();
    });
  }}>
    <label>${label}<input name="reason" required /></label>
    <${ErrorText} error=${error} />
    <button disabled=${busy}>${button}</button>
  </form>`;
}

function NewCrisisLog({ patientId, reload }) {
  const [busy, error, run] = useAction();
  const submit = (e) => {
    e.preventDefault();
    const formEl = e.target;
    const form = new FormData(formEl);
    run(async () => {
      await new Parse.Object('CrisisInterventionLog').save({
        patient: pointer('PatientProfile', patientId),
        interventionDate: new Date(),
        riskLevel: form.get('riskLevel'),
        details: form.get('details'),
      });
      formEl.reset();
      reload();
    });
  };
  return html`<details><summary>Open a crisis log</summary><form onSubmit=${submit}>
    <label>Risk level<select name="riskLevel">
      ${['low', 'moderate', 'high', 'imminent'].map((r) => html`<option value=${r}>${r}</option>`)}
    </select></label>
    <label>What happened<textarea name="details" rows="2" required></textarea></label>
    <${ErrorText} error=${error} />
    <button disabled=${busy}>Open crisis log</button>
  </form></details>`;
}

function CrisisLogs({ patientId, logs, events, reload }) {
  return html`<section class="card" aria-labelledby="crisis-logs-title">
    <h3 id="crisis-logs-title">Crisis logs</h3>
    <${NewCrisisLog} patientId=${patientId} reload=${reload} />
    ${logs.length === 0 && html`<p>No crisis logs.</p>`}
    ${logs.map((log) => {
      const history = events.filter((e) => e.get('crisisLog') && e.get('crisisLog').id === log.id);
      const next = NEXT[log.get('status')];
      return html`<article class="card" aria-label=${`Crisis log ${when(log.get('interventionDate'))}`}>
        <p><span class="flag">Risk ${log.get('riskLevel')}</span> · status <strong>${log.get('status')}</strong> · ${when(log.get('interventionDate'))}</p>
        <p>${log.get('details')}</p>
        ${next && html`<${ReasonForm} label=${`Note for moving to ${next}`} button=${`Mark ${next}`}
          onSubmit=${async (note) => {
            await log.save({ status: next, historyNote: note });
            reload();
          }} />`}
        <details><summary>History (${history.length})</summary><ol>
          ${history.map((e) => html`<li>${when(e.createdAt)}: ${Object.entries(e.get('changes') || {})
            .map(([k, v]) => `${k}: ${v.from ?? '—'} → ${v.to ?? '—'}`)
            .join('; ')}${e.get('note') ? ` (note: ${e.get('note')})` : ''}</li>`)}
        </ol></details>
      </article>`;
    })}
  </section>`;
}

function Assessments({ patientId, assessments, versions, reload }) {
  const [busy, error, run] = useAction();
  const assign = (instrument) =>
    run(async () => {
      await Parse.Cloud.run('assignInstrument', { patientId, instrument });
      reload();
    });
  return html`<section class="card" aria-labelledby="assess-title">
    <h3 id="assess-title">Assessments</h3>
    <p>${['PHQ-9', 'GAD-7', 'C-SSRS'].map(
      (name) => html`<button disabled=${busy} onClick=${() => assign(name)}>Assign ${name}</button>`
    )}</p>
    <${ErrorText} error=${error} />
    ${assessments.length === 0 && html`<p>No assessments.</p>`}
    ${assessments.map((a) => {
      const old = versions.filter((v) => v.get('assessment') && v.get('assessment').id === a.id);
      const status = a.get('status');
      return html`<article class="card" aria-label=${`${a.get('instrument')} ${when(a.get('assessmentDate'))}`}>
        <p><strong>${a.get('instrument')}</strong> · ${status} · v${a.get('version')} · ${when(a.get('assessmentDate'))}
          ${a.get('score') !== undefined && a.get('score') !== null ? ` · score ${a.get('score')}` : ''}
          ${a.get('severity') ? ` · ${a.get('severity')}` : ''}
          ${(a.get('riskFlags') || []).length > 0 && html` · <span class="flag">${a.get('riskFlags').join(', ')}</span>`}</p>
        ${status === 'draft' && html`<button onClick=${() => run(async () => {
          await Parse.Cloud.run('publishAssessment', { assessmentId: a.id });
          reload();
        })}>Publish</button>`}
        ${['final', 'amended'].includes(status) && html`<${AmendForm} assessment=${a} reload=${reload} />`}
        ${status !== 'entered-in-error' && status !== 'assigned' && html`<${ReasonForm} label="Entered in error: reason" button="Mark entered-in-error"
          onSubmit=${async (reason) => {
            await Parse.Cloud.run('markAssessmentEnteredInError', { assessmentId: a.id, reason });
            reload();
          }} />`}
        ${old.length > 0 && html`<details><summary>Earlier versions (${old.length})</summary><ul>
          ${old.map((v) => html`<li>v${v.get('version')} · ${when(v.createdAt)} · reason: ${v.get('reason')}
            ${v.get('snapshot') && v.get('snapshot').score !== undefined ? ` · score ${v.get('snapshot').score}` : ''}</li>`)}
        </ul></details>`}
      </article>`;
    })}
  </section>`;
}

function AmendForm({ assessment, reload }) {
  const [busy, error, run] = useAction();
  const submit = (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    run(async () => {
      await Parse.Cloud.run('amendAssessment', {
        assessmentId: assessment.id,
        reason: form.get('reason'),
        changes: { recommendations: form.get('recommendations') },
      });
      reload();
    });
  };
  return html`<form onSubmit=${submit}>
    <label>Recommendations<textarea name="recommendations" rows="2" required>${assessment.get('recommendations') || ''}</textarea></label>
    <label>Reason for the amendment<input name="reason" required /></label>
    <${ErrorText} error=${error} />
    <button disabled=${busy}>Amend</button>
  </form>`;
}

function Appointments({ me, patientId, appointments, reload }) {
  const [busy, error, run] = useAction();
  const submit = (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    const start = new Date(form.get('startAt'));
    const end = new Date(start.getTime() + Number(form.get('minutes')) * 60_000);
    run(async () => {
      await new Parse.Object('Appointment').save({
        patient: pointer('PatientProfile', patientId),
        provider: me,
        startAt: start,
        endAt: end,
        status: 'scheduled',
        location: form.get('location') || undefined,
      });
      reload();
    });
  };
  return html`<section class="card" aria-labelledby="appts-title">
    <h3 id="appts-title">Appointments</h3>
    <ul>${appointments.map((a) => html`<li>${when(a.get('startAt'))} – ${when(a.get('endAt'))} · ${a.get('status')}</li>`)}</ul>
    <form onSubmit=${submit}>
      <label>Start<input name="startAt" type="datetime-local" required /></label>
      <label>Length (minutes)<input name="minutes" type="number" min="5" max="240" value="50" required /></label>
      <label>Location<input name="location" /></label>
      <${ErrorText} error=${error} />
      <button disabled=${busy}>Book appointment</button>
    </form>
  </section>`;
}
