// LiveQuery through the official SDK's client (Parse.LiveQueryClient over the `ws` package), at
// ws://host:port/parse derived from the server URL as the SDK does. One patient subscribes and
// receives create / update / leave / enter / delete for an object only they may read; a second
// patient, subscribed to the same query, receives nothing.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { MASTER, Parse, createClass, unique } from './support.mjs';

const PASSWORD = 'a long enough passphrase';
const WS_URL = Parse.serverURL.replace(/^http/, 'ws');

/** A patient signed up through the SDK: [user, sessionToken]. */
async function signUpPatient() {
  const name = unique('lqpat');
  const user = await Parse.User.signUp(name, PASSWORD, { email: `${name}@example.org` });
  return [user, user.getSessionToken()];
}

/** A LiveQuery client acting for one session (no master key). */
function clientFor(sessionToken) {
  const client = new Parse.LiveQueryClient({
    applicationId: Parse.applicationId,
    serverURL: WS_URL,
    sessionToken,
  });
  client.open();
  return client;
}

/** Records every event of a subscription, and waits for the next one of a kind. */
function recorder(subscription) {
  const events = [];
  const waiters = [];
  for (const op of ['create', 'update', 'enter', 'leave', 'delete']) {
    subscription.on(op, (object, original) => {
      events.push({ op, object, original });
      waiters.splice(0).forEach((wake) => wake());
    });
  }
  const next = async (op, timeoutMs = 10000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = events.findIndex((event) => event.op === op);
      if (index >= 0) return events.splice(index, 1)[0];
      const left = deadline - Date.now();
      assert.ok(left > 0, `no ${op} event within ${timeoutMs} ms (have ${events.map((e) => e.op)})`);
      await new Promise((wake) => {
        waiters.push(wake);
        setTimeout(wake, left);
      });
    }
  };
  return { events, next };
}

const opened = (subscription) => new Promise((resolve) => subscription.on('open', resolve));
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

describe('LiveQuery with the official SDK client', () => {
  let className;
  let patient;
  let patientClient;
  let otherClient;
  let mine;
  let theirs;

  before(async () => {
    className = unique('SdkLive');
    await createClass(className, (schema) => schema.addString('name').addNumber('score'));
    let token;
    [patient, token] = await signUpPatient();
    const [, otherToken] = await signUpPatient();
    patientClient = clientFor(token);
    otherClient = clientFor(otherToken);
    const query = () => new Parse.Query(className).greaterThanOrEqualTo('score', 10);
    const mineSub = patientClient.subscribe(query(), token);
    const theirSub = otherClient.subscribe(query(), otherToken);
    mine = recorder(mineSub);
    theirs = recorder(theirSub);
    await Promise.all([opened(mineSub), opened(theirSub)]);
  });

  after(async () => {
    await patientClient?.close();
    await otherClient?.close();
  });

  it('delivers create, update, leave, enter and delete to the patient only', async () => {
    const acl = new Parse.ACL();
    acl.setReadAccess(patient.id, true);
    const object = new Parse.Object(className);
    object.set({ name: 'chart note', score: 12 });
    object.setACL(acl);
    await object.save(null, MASTER);

    const created = await mine.next('create');
    assert.equal(created.object.id, object.id);
    assert.equal(created.object.get('name'), 'chart note');
    assert.equal(created.object.get('score'), 12);
    assert.ok(created.object.createdAt instanceof Date);

    object.set('score', 15);
    await object.save(null, MASTER);
    const updated = await mine.next('update');
    assert.equal(updated.object.get('score'), 15);
    assert.equal(updated.original.get('score'), 12);

    object.set('score', 1);
    await object.save(null, MASTER);
    assert.equal((await mine.next('leave')).object.get('score'), 1);

    object.set('score', 30);
    await object.save(null, MASTER);
    assert.equal((await mine.next('enter')).object.get('score'), 30);

    await object.destroy(MASTER);
    assert.equal((await mine.next('delete')).object.id, object.id);

    await pause(500);
    assert.deepEqual(theirs.events, [], 'the second patient received events');
    assert.deepEqual(mine.events, []);
  });
});
