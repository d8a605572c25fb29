// What apps built from the template and Parse's device SDKs send, through the official SDK:
// a Message carrying the server-owned `from` and `sentAt`, Parse.Installation (create and
// update by installationId), push sending (not configured), and the request Parse Dashboard's
// "Run as" sends (session tokens are stored hashed: an explicit error).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, it } from 'node:test';

import { MASTER, Parse, rejectsWithCode, unique } from './support.mjs';

const PASSWORD = 'a long enough passphrase';

async function rest(method, path, { master = false, body, headers = {} } = {}) {
  const sent = { 'X-Parse-Application-Id': Parse.applicationId, ...headers };
  if (master) sent['X-Parse-Master-Key'] = Parse.masterKey;
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  const response = await fetch(`${Parse.serverURL}/${path}`, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

/** A user with `role` (set with the master key), logged in: { user, token }. */
async function person(role) {
  const username = unique(role);
  const made = await rest('POST', 'users', {
    master: true,
    body: { username, password: PASSWORD, role },
  });
  assert.equal(made.status, 201, JSON.stringify(made.json));
  const user = await Parse.User.logIn(username, PASSWORD);
  const token = user.getSessionToken();
  await Parse.User.logOut();
  return { user: Parse.User.createWithoutData(made.json.objectId), token };
}

describe('Message from a template client (server-owned from and sentAt)', () => {
  let patient;
  let provider;
  let profile;

  before(async () => {
    patient = await person('patient');
    provider = await person('provider');
    profile = new Parse.Object('PatientProfile');
    profile.set({ user: patient.user, displayName: 'Pat' });
    await profile.save(null, { sessionToken: patient.token });
    await Parse.Cloud.run(
      'assignProvider',
      { patientId: profile.id, providerId: provider.user.id },
      MASTER,
    );
  });

  function message(extra) {
    const sent = new Parse.Object('Message');
    sent.set({ conversationId: 'sdk-template', to: provider.user, patient: profile, body: 'hi' });
    sent.set(extra);
    return sent;
  }

  it('accepts from = the caller and replaces a client sentAt with the server time', async () => {
    const clientClock = new Date('2020-01-01T00:00:00Z');
    const before = Date.now() - 1000;
    const sent = message({ from: patient.user, sentAt: clientClock });
    await sent.save(null, { sessionToken: patient.token });
    const stored = await new Parse.Query('Message').get(sent.id, MASTER);
    assert.equal(stored.get('from').id, patient.user.id);
    assert.ok(stored.get('sentAt').getTime() >= before, `${stored.get('sentAt')}`);
  });

  it('refuses from = someone else (119)', async () => {
    const forged = message({ from: provider.user });
    await rejectsWithCode(forged.save(null, { sessionToken: patient.token }), 119);
  });
});

describe('Parse.Installation (create and update by installationId)', () => {
  it('currentInstallation() saves, saves again as an update, and fetches itself', async () => {
    const installation = await Parse.Installation.currentInstallation();
    assert.equal(installation.get('deviceType'), 'web');
    installation.set('channels', ['news']);
    await installation.save();
    assert.ok(installation.id);
    installation.set('badge', 2);
    await installation.save();
    const stored = await new Parse.Query(Parse.Installation).get(installation.id, MASTER);
    assert.equal(stored.get('installationId'), installation.get('installationId'));
    assert.deepEqual(stored.get('channels'), ['news']);
    assert.equal(stored.get('badge'), 2);
    stored.set('badge', 0);
    await stored.save(null, MASTER);
    await installation.fetch(); // a client reads its own installation
    assert.equal(installation.get('badge'), 0);
  });

  it('a new object with a stored installationId updates that installation', async () => {
    const installationId = randomUUID();
    const first = new Parse.Installation({ installationId, deviceType: 'android' });
    await first.save(null, MASTER);
    const again = new Parse.Installation({ installationId, deviceType: 'android', badge: 7 });
    await again.save(null, MASTER);
    assert.equal(again.id, first.id);
    const all = await new Parse.Query(Parse.Installation)
      .equalTo('installationId', installationId)
      .find(MASTER);
    assert.deepEqual(
      all.map((row) => [row.id, row.get('badge')]),
      [[first.id, 7]],
    );
  });

  it('deviceType is required (135) and never changes (136)', async () => {
    await rejectsWithCode(new Parse.Installation({ installationId: randomUUID() }).save(), 135);
    const made = new Parse.Installation({ installationId: randomUUID(), deviceType: 'ios' });
    await made.save(null, MASTER);
    made.set('deviceType', 'android');
    await rejectsWithCode(made.save(null, MASTER), 136);
  });

  it('clients cannot list or delete installations (119); the master key can', async () => {
    await rejectsWithCode(new Parse.Query(Parse.Installation).find(), 119);
    const made = new Parse.Installation({ installationId: randomUUID(), deviceType: 'ios' });
    await made.save(null, MASTER);
    await rejectsWithCode(made.destroy(), 119);
    assert.ok((await new Parse.Query(Parse.Installation).find(MASTER)).length >= 1);
    await made.destroy(MASTER);
  });

  it('another device cannot read an installation by its objectId (101)', async () => {
    const other = new Parse.Installation({ installationId: randomUUID(), deviceType: 'ios' });
    await other.save(null, MASTER);
    // Query.get is a find (119 for clients, as Parse); GET by id answers only its own device.
    await rejectsWithCode(new Parse.Query(Parse.Installation).get(other.id), 119);
    const path = `classes/_Installation/${other.id}`;
    const stranger = await rest('GET', path, { headers: { 'X-Parse-Installation-Id': randomUUID() } });
    assert.deepEqual([stranger.status, stranger.json.code], [404, 101]);
    const own = await rest('GET', path, {
      headers: { 'X-Parse-Installation-Id': other.get('installationId') },
    });
    assert.equal(own.status, 200);
    assert.equal(own.json.deviceType, 'ios');
  });
});

describe('Parse.Push (push is not configured)', () => {
  it('Parse.Push.send answers 115 Missing push configuration', async () => {
    const error = await rejectsWithCode(
      Parse.Push.send({ channels: ['news'], data: { alert: 'hello' } }, MASTER),
      115,
    );
    assert.equal(error.message, 'Missing push configuration');
  });
});

describe('Parse Dashboard "Run as" (session tokens are stored hashed)', () => {
  it("the Dashboard's session look-up answers 119 with the reason, never a token", async () => {
    const { user } = await person('patient');
    const error = await rejectsWithCode(
      new Parse.Query(Parse.Session).equalTo('user', user).first(MASTER),
      119,
    );
    assert.match(error.message, /stored hashed/);
    // Any other query of _Session still answers, without tokens.
    const sessions = await new Parse.Query(Parse.Session).equalTo('user', user).find(MASTER);
    assert.equal(sessions.length, 1);
    assert.equal(sessions[0].getSessionToken(), '');
  });

  it('Parse.User.loginAs (POST /loginAs) answers 119 with the reason, even with the master key', async () => {
    const { user } = await person('patient');
    const error = await rejectsWithCode(Parse.User.loginAs(user.id), 119);
    assert.match(error.message, /loginAs is not available/);
  });
});
