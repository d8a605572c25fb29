// The patient portal (/app/): sign up or in, see your own chart, complete screens, message your
// care team, and see who viewed your record. Everything goes through the Parse JS SDK.
import {
  ErrorText,
  IdleGuard,
  Parse,
  ScoreChart,
  SignIn,
  Tabs,
  config,
  finishSso,
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
import { INSTRUMENTS, MEANING, askedItems } from './instruments.js';
import { Conversations } from './messages.js';

function SignUp({ onSignedIn }) {
  const [busy, error, run] = useAction();
  const submit = (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    run(async () => {
      const user = await Parse.User.signUp(form.get('username'), form.get('password'), {
        email: form.get('email'),
      });
      await createProfile(user, form.get('displayName'));
      onSignedIn(user);
    });
  };
  return html`<form class="card narrow" onSubmit=${submit} aria-labelledby="signup-title">
    <h2 id="signup-title">Create your account</h2>
    <label>Your name<input name="displayName" autocomplete="name" required /></label>
    <label>Email<input name="email" type="email" autocomplete="email" required /></label>
    <label>Username<input name="username" autocomplete="username" required /></label>
    <label>Password<input name="password" type="password" autocomplete="new-password" required
      aria-describedby="pw-hint" /></label>
    <p id="pw-hint" class="hint">At least 10 characters.</p>
    <${ErrorText} error=${error} />
    <button disabled=${busy}>Create account</button>
  </form>`;
}

function createProfile(user, displayName) {
  const profile = new Parse.Object('PatientProfile');
  // The chart's identity (record number, active flag, clinic) is the server's to set.
  return profile.save({ user, displayName });
}

function Welcome({ onSignedIn }) {
  const [mode, setMode] = useState('signin');
  const [error, setError] = useState(null);
  useEffect(() => {
    finishSso()
      .then((user) => user && onSignedIn(user))
      .catch((e) => setError(problem(e)));
  }, []);
  return html`<main id="main">
    <h1>${config.clinic} patient portal</h1>
    <${ErrorText} error=${error} />
    <${Tabs} label="Account" current=${mode} onSelect=${setMode}
      tabs=${[['signin', 'Sign in'], ['signup', 'Create account']]} />
    ${mode === 'signin' ? html`<${SignIn} onSignedIn=${onSignedIn} />` : html`<${SignUp} onSignedIn=${onSignedIn} />`}
  </main>`;
}

export function CrisisBanner() {
  return html`<section class="crisis" role="alert" aria-labelledby="crisis-title">
    <h2 id="crisis-title">Help is available right now</h2>
    <p>If you are thinking about suicide or hurting yourself, call or text <strong>988</strong> (the 988 Suicide
      & Crisis Lifeline), any time, day or night, or chat at 988lifeline.org.</p>
    <p>${config.emergency}</p>
  </section>`;
}

function InstrumentForm({ assessment, onDone }) {
  const name = assessment.get('instrument');
  const spec = INSTRUMENTS[name];
  const [answers, setAnswers] = useState({});
  const [busy, error, run] = useAction();
  const items = askedItems(name, answers);
  const submit = (e) => {
    e.preventDefault();
    const responses = Object.fromEntries(items.map((item) => [item.id, answers[item.id]]));
    run(async () => {
      const result = await Parse.Cloud.run('submitInstrument', {
        assessmentId: assessment.id,
        responses,
      });
      onDone(result);
    });
  };
  return html`<form class="card instrument" onSubmit=${submit} aria-labelledby="form-title">
    <h2 id="form-title">${spec.title}</h2>
    <p>${spec.stem}</p>
    ${items.map(
      (item, n) => html`<fieldset key=${item.id}>
        <legend>${n + 1}. ${item.text}</legend>
        <div class="scale">
          ${spec.scale.map(
            ([value, label]) => html`<label class="choice"><input type="radio" name=${item.id}
              required checked=${answers[item.id] === value}
              onChange=${() => setAnswers({ ...answers, [item.id]: value })} /> ${label}</label>`
          )}
        </div>
      </fieldset>`
    )}
    <${ErrorText} error=${error} />
    <button disabled=${busy}>Submit answers</button>
  </form>`;
}

function Result({ result }) {
  const scored = result.score !== null && result.score !== undefined;
  return html`<section class="card result" aria-labelledby="result-title" tabindex="-1" id="result">
    <h2 id="result-title">Thank you: your answers were received</h2>
    <p>${scored ? html`Score <strong>${result.score}</strong>, ` : ''}<strong>${result.severity}</strong>.</p>
    <p>${MEANING[result.severity] || ''}</p>
    ${(result.riskFlags || []).length > 0 &&
    html`<p><strong>One or more of your answers tell us you have had thoughts of death or of hurting
      yourself. Your care team has been alerted and will contact you.</strong> Please use the help
      above if you need it now.</p>`}
  </section>`;
}

function Home({ profile, assessments, appointments, reload, onResult }) {
  const [open, setOpen] = useState(null);
  const [result, setResult] = useState(null);
  const waiting = assessments.filter((a) => a.get('status') === 'assigned');
  if (open) {
    return html`<${InstrumentForm} assessment=${open} onDone=${(r) => {
      setOpen(null);
      setResult(r);
      onResult(r);
      reload();
    }} />`;
  }
  return html`
    ${result && html`<${Result} result=${result} />`}
    <section class="card" aria-labelledby="todo-title">
      <h2 id="todo-title">To complete</h2>
      ${waiting.length === 0
        ? html`<p>Nothing to complete right now.</p>`
        : html`<ul>${waiting.map(
            (a) => html`<li>${a.get('instrument')} (assigned ${when(a.get('assessmentDate'))})
              <button onClick=${() => setOpen(a)}>Start ${a.get('instrument')}</button></li>`
          )}</ul>`}
    </section>
    <section class="card" aria-labelledby="appt-title">
      <h2 id="appt-title">Upcoming appointments</h2>
      ${appointments.length === 0
        ? html`<p>No upcoming appointments.</p>`
        : html`<ul>${appointments.map(
            (a) => html`<li>${when(a.get('startAt'))}: ${a.get('status')}${a.get('location') ? `, ${a.get('location')}` : ''}</li>`
          )}</ul>`}
    </section>
    <section class="card" aria-labelledby="profile-title">
      <h2 id="profile-title">Your profile</h2>
      <dl>
        <dt>Name</dt><dd>${profile.get('displayName')}</dd>
        <dt>Record number</dt><dd>${profile.get('medicalRecordNumber')}</dd>
        ${profile.get('dateOfBirth') && html`<dt>Date of birth</dt><dd>${profile.get('dateOfBirth').toLocaleDateString()}</dd>`}
      </dl>
    </section>`;
}

function History({ assessments }) {
  const done = assessments.filter((a) => ['final', 'amended'].includes(a.get('status')));
  const byInstrument = {};
  for (const a of [...done].reverse()) {
    const name = a.get('instrument');
    if (a.get('score') === undefined || a.get('score') === null) continue;
    (byInstrument[name] = byInstrument[name] || []).push({
      score: a.get('score'),
      label: new Date(a.get('assessmentDate') || a.createdAt).toLocaleDateString(),
    });
  }
  return html`<section class="card" aria-labelledby="hist-title">
    <h2 id="hist-title">Your assessments</h2>
    ${Object.entries(byInstrument).map(
      ([name, points]) => html`<${ScoreChart} points=${points} max=${name === 'PHQ-9' ? 27 : 21}
        label=${`${name} score over time`} />`
    )}
    ${done.length === 0
      ? html`<p>No completed assessments yet.</p>`
      : html`<table><caption class="sr-only">Completed assessments</caption>
        <thead><tr><th scope="col">Date</th><th scope="col">Instrument</th><th scope="col">Score</th><th scope="col">Result</th></tr></thead>
        <tbody>${done.map(
          (a) => html`<tr><td>${when(a.get('assessmentDate') || a.createdAt)}</td><td>${a.get('instrument')}</td>
            <td>${a.get('score') ?? '—'}</td><td>${a.get('severity') || a.get('status')}</td></tr>`
        )}</tbody></table>`}
  </section>`;
}

function AccessHistory() {
  const [data, setData] = useState(null);
  const [, error, run] = useAction();
  useEffect(() => {
    run(async () => setData(await Parse.Cloud.run('myAccessHistory')));
  }, []);
  return html`<section class="card" aria-labelledby="access-title">
    <h2 id="access-title">Who viewed my record</h2>
    <p>Staff access to your record in the last ${data ? data.days : 365} days, from the clinic's audit log.</p>
    <${ErrorText} error=${error} />
    ${data && data.entries.length === 0 && html`<p>No staff access recorded.</p>`}
    ${data && data.entries.length > 0 && html`<table><caption class="sr-only">Access history</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Purpose</th></tr></thead>
      <tbody>${data.entries.map(
        (e) => html`<tr><td>${when(e.at)}</td><td>${e.name ? `${e.name} (${e.roles.join(', ')})` : e.roles.join(', ') || 'staff'}</td>
          <td>${e.what}</td><td>${e.purpose || '—'}</td></tr>`
      )}</tbody></table>`}
  </section>`;
}

function Portal({ user }) {
  const [profile, setProfile] = useState(undefined);
  const [assessments, setAssessments] = useState([]);
  const [appointments, setAppointments] = useState([]);
  const [tab, setTab] = useState('home');
  const [crisis, setCrisis] = useState(false);
  const [error, setError] = useState(null);

  const load = async () => {
    try {
      const found = await new Parse.Query('PatientProfile').equalTo('user', user).first();
      setProfile(found || null);
      if (!found) return;
      const mine = await new Parse.Query('IntakeAssessment')
        .equalTo('patient', pointer('PatientProfile', found.id))
        .descending('createdAt')
        .limit(200)
        .find();
      setAssessments(mine);
      const latest = {};
      for (const a of mine) {
        if (['final', 'amended'].includes(a.get('status')) && !latest[a.get('instrument')]) latest[a.get('instrument')] = a;
      }
      if (Object.values(latest).some((a) => (a.get('riskFlags') || []).length > 0)) setCrisis(true);
      setAppointments(
        await new Parse.Query('Appointment')
          .equalTo('patient', pointer('PatientProfile', found.id))
          .greaterThanOrEqualTo('startAt', new Date())
          .notContainedIn('status', ['cancelled'])
          .ascending('startAt')
          .find()
      );
    } catch (e) {
      setError(problem(e));
    }
  };
  useEffect(() => {
    load();
  }, []);
  useLive(
    () => (profile ? [new Parse.Query('IntakeAssessment').equalTo('patient', pointer('PatientProfile', profile.id))] : []),
    load,
    [profile && profile.id]
  );

  if (profile === undefined) return html`<main id="main"><p>Loading…</p><${ErrorText} error=${error} /></main>`;
  if (profile === null) {
    return html`<main id="main"><${ProfileForm} user=${user} onDone=${load} /></main>`;
  }
  return html`<${IdleGuard} />
    <header class="top">
      <p class="brand">${config.clinic}</p>
      <p>Signed in as ${profile.get('displayName')}</p>
      <button class="secondary" onClick=${() => logOut()}>Sign out</button>
    </header>
    ${crisis && html`<${CrisisBanner} />`}
    <${Tabs} label="Portal sections" current=${tab} onSelect=${setTab}
      tabs=${[['home', 'Home'], ['history', 'Assessments'], ['messages', 'Messages'], ['access', 'Who viewed my record']]} />
    <main id="main">
      <h1 class="sr-only">Patient portal</h1>
      <${ErrorText} error=${error} />
      ${tab === 'home' &&
      html`<${Home} profile=${profile} assessments=${assessments} appointments=${appointments} reload=${load}
        onResult=${(r) => (r.riskFlags || []).length > 0 && setCrisis(true)} />`}
      ${tab === 'history' && html`<${History} assessments=${assessments} />`}
      ${tab === 'messages' && html`<${Conversations} me=${user} patient=${profile} />`}
      ${tab === 'access' && html`<${AccessHistory} />`}
    </main>`;
}

function ProfileForm({ user, onDone }) {
  const [busy, error, run] = useAction();
  const submit = (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    run(async () => {
      await createProfile(user, form.get('displayName'));
      onDone();
    });
  };
  return html`<form class="card narrow" onSubmit=${submit} aria-labelledby="pf-title">
    <h1 id="pf-title">Complete your profile</h1>
    <label>Your name<input name="displayName" autocomplete="name" required /></label>
    <${ErrorText} error=${error} />
    <button disabled=${busy}>Save</button>
    <button type="button" class="secondary" onClick=${() => logOut()}>Sign out</button>
  </form>`;
}

function App() {
  const [user, setUser] = useState(Parse.User.current());
  const [notice] = useState(takeNotice());
  return html`<a class="skip" href="#main">Skip to content</a>
    ${notice && html`<p class="notice" role="status">${notice}</p>`}
    ${user ? html`<${Portal} user=${user} />` : html`<${Welcome} onSignedIn=${setUser} />`}`;
}

const root = document.getElementById('root');
root.textContent = '';
render(html`<${App} />`, root);
