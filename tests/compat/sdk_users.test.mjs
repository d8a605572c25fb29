// The seed's integration flow through the official SDK: sign up, log in, fetch the patient's
// own PatientProfile and IntakeAssessments, log out; a second patient sees none of it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { MASTER, Parse, rejectsWithCode, unique } from './support.mjs';

const PASSWORD = 'a long enough passphrase';
// In Node the SDK keeps no current user unless asked: an app (browser, mobile) always does.
Parse.User.enableUnsafeCurrentUser();

/** POST to the REST API with the master key (staff accounts are created by an admin). */
async function masterPost(path, body) {
  const response = await fetch(`${Parse.serverURL}${path}`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'X-Parse-Application-Id': Parse.applicationId,
      'X-Parse-Master-Key': Parse.masterKey,
    },
    body: JSON.stringify(body),
  });
  const json = await response.json();
  assert.ok(response.ok, JSON.stringify(json));
  return json;
}

async function signUpPatient(name) {
  const user = new Parse.User();
  user.set({ username: name, password: PASSWORD, email: `${name}@example.org` });
  await user.signUp();
  const profile = new Parse.Object('PatientProfile');
  // The MRN, clinic and active flag are the clinic's: the server assigns the MRN.
  profile.set({ user, displayName: name });
  await profile.save();
  await profile.fetch();
  assert.match(profile.get('medicalRecordNumber'), /^MH-/);
  return { user, profile };
}

describe('patient flow (users, sessions, ACLs)', () => {
  let provider;
  let first;
  let second;

  before(async () => {
    provider = await masterPost('/users', {
      username: unique('provider'), password: PASSWORD, role: 'provider',
    });
    first = await signUpPatient(unique('patient'));
    const firstSession = Parse.User.current().getSessionToken();
    await Parse.User.logOut();
    await Parse.Cloud.run('assignProvider', {
      patientId: first.profile.id, providerId: provider.objectId,
    }, MASTER);
    const assessment = new Parse.Object('IntakeAssessment');
    assessment.set({
      patient: first.profile,
      assessor: Parse.User.createWithoutData(provider.objectId),
      assessmentDate: new Date('2026-03-01T10:00:00.000Z'),
      details: 'intake interview',
      status: 'final', // drafts are hidden from patients; an import may set the status
    });
    await assessment.save(null, MASTER);
    assert.ok(firstSession.startsWith('r:'));
    second = await signUpPatient(unique('patient'));
    await Parse.User.logOut();
  });

  after(async () => {
    if (Parse.User.current()) await Parse.User.logOut();
  });

  it('logs in, reads its own profile and assessments, and logs out', async () => {
    const user = await Parse.User.logIn(first.user.get('username'), PASSWORD);
    assert.match(user.getSessionToken(), /^r:/);
    const me = await Parse.User.currentAsync();
    assert.equal(me.id, first.user.id);

    const profile = await new Parse.Query('PatientProfile').equalTo('user', user).first();
    assert.equal(profile.id, first.profile.id);
    const assessments = await new Parse.Query('IntakeAssessment')
      .equalTo('patient', profile).include('patient').descending('assessmentDate').find();
    assert.equal(assessments.length, 1);
    assert.equal(assessments[0].get('details'), 'intake interview');
    assert.equal(assessments[0].get('patient').get('displayName'), first.profile.get('displayName'));

    const sessionToken = user.getSessionToken();
    await Parse.User.logOut();
    await rejectsWithCode(Parse.User.become(sessionToken), 209);
  });

  it('a second patient sees none of the first patient\'s records', async () => {
    await Parse.User.logIn(second.user.get('username'), PASSWORD);
    const profiles = await new Parse.Query('PatientProfile').find();
    assert.deepEqual(profiles.map((p) => p.id), [second.profile.id]);
    assert.equal(await new Parse.Query('IntakeAssessment').count(), 0);
    await rejectsWithCode(new Parse.Query('PatientProfile').get(first.profile.id), 101);
    const byPointer = await new Parse.Query('IntakeAssessment')
      .equalTo('patient', first.profile).find();
    assert.deepEqual(byPointer, []);
    await rejectsWithCode(new Parse.Query(Parse.User).get(first.user.id), 101);
    await Parse.User.logOut();
  });

  it('refuses a wrong password with the same error as an unknown user', async () => {
    const wrong = await rejectsWithCode(Parse.User.logIn(first.user.get('username'), 'nope-nope-nope'), 101);
    const unknown = await rejectsWithCode(Parse.User.logIn(unique('nobody'), 'nope-nope-nope'), 101);
    assert.equal(wrong.message, unknown.message);
  });
});
