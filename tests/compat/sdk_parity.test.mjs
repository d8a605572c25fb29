// Requests a Parse app sends where MindHarbor used to answer differently from Parse Server 9
// (issue 15): each test is one such request, checked against what parse-server's source does.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MASTER, Parse, createClass, rejectsWithCode, seed, unique } from './support.mjs';

async function fieldsOf(className) {
  return (await new Parse.Schema(className).get()).fields;
}

describe('null and Delete on a field the class does not have', () => {
  it('creates the object and adds no column (set null, unset before the first save)', async () => {
    const className = unique('SdkUnset');
    await createClass(className, (s) => s.addString('name'));
    const object = new Parse.Object(className);
    object.set('name', 'a');
    object.set('ghost', null);
    object.unset('phantom');
    await object.save(null, MASTER);
    assert.match(object.id, /^[A-Za-z0-9]{10}$/);
    const fields = await fieldsOf(className);
    assert.equal(fields.ghost, undefined);
    assert.equal(fields.phantom, undefined);
  });

  it('updates an object with null / Delete on unknown fields, anonymously too', async () => {
    const className = unique('SdkUnsetUpdate');
    await createClass(className, (s) => s.addString('name'));
    const [object] = await seed(className, [{ name: 'b' }]);
    object.set('ghost', null);
    object.unset('phantom');
    object.set('name', 'c');
    await object.save();
    const fresh = await new Parse.Query(className).get(object.id);
    assert.equal(fresh.get('name'), 'c');
    const fields = await fieldsOf(className);
    assert.equal(fields.ghost, undefined);
    assert.equal(fields.phantom, undefined);
  });

  it('creates a new class from an object whose only extra value is null', async () => {
    const className = unique('SdkUnsetNewClass');
    const object = new Parse.Object(className);
    object.set('empty', null);
    await object.save(null, MASTER);
    assert.equal((await fieldsOf(className)).empty, undefined);
  });
});

describe('field names Parse refuses', () => {
  it('refuses a field named length with 105, in a save and in /schemas', async () => {
    const className = unique('SdkLength');
    await createClass(className, (s) => s.addString('name'));
    const object = new Parse.Object(className);
    object.set('length', 3);
    await rejectsWithCode(object.save(null, MASTER), 105);
    const schema = new Parse.Schema(className);
    schema.addNumber('length');
    await rejectsWithCode(schema.update(), 105);
  });
});

describe('jobs', () => {
  it('Parse.Cloud.startJob returns the job status id (Access-Control-Expose-Headers)', async () => {
    const statusId = await Parse.Cloud.startJob('purgeIdempotencyKeys', {});
    assert.match(String(statusId), /^[A-Za-z0-9]{10}$/);
    const status = await Parse.Cloud.getJobStatus(statusId);
    assert.equal(status.get('jobName'), 'purgeIdempotencyKeys');
  });
});

describe('saving or deleting another user (Parse answers 206, 101 with the master key)', () => {
  const PASSWORD = 'a long enough passphrase';

  async function signUp() {
    const user = new Parse.User();
    user.set({ username: unique('parity'), password: PASSWORD });
    await user.signUp();
    return user;
  }

  it('answers 206 to a signed-in user saving or destroying someone else', async () => {
    const alice = await signUp();
    const bob = await signUp();
    const token = { sessionToken: alice.getSessionToken() };
    const other = Parse.User.createWithoutData(bob.id);
    other.set('email', 'x@example.org');
    await rejectsWithCode(other.save(null, token), 206);
    await rejectsWithCode(Parse.User.createWithoutData(bob.id).destroy(token), 206);
  });

  it('answers 206 to an anonymous caller saving or destroying a user', async () => {
    const bob = await signUp();
    const other = Parse.User.createWithoutData(bob.id);
    other.set('email', 'y@example.org');
    await rejectsWithCode(other.save(), 206);
    await rejectsWithCode(Parse.User.createWithoutData(bob.id).destroy(), 206);
    // The master key is told the plain truth about a user that does not exist.
    const ghost = Parse.User.createWithoutData('AAAAAAAAAA');
    ghost.set('email', 'z@example.org');
    await rejectsWithCode(ghost.save(null, MASTER), 101);
    await rejectsWithCode(Parse.User.createWithoutData('AAAAAAAAAA').destroy(MASTER), 101);
  });
});

describe('query details', () => {
  it('orders by _created_at / _updated_at as Parse.com storage names', async () => {
    const className = unique('SdkOrderAlias');
    await createClass(className, (s) => s.addString('name'));
    for (const name of ['first', 'second', 'third']) {
      await seed(className, [{ name }]);
    }
    const descending = new Parse.Query(className);
    descending.descending('_created_at');
    assert.deepEqual((await descending.find(MASTER)).map((o) => o.get('name')), [
      'third', 'second', 'first',
    ]);
    const ascending = new Parse.Query(className);
    ascending.ascending('_updated_at');
    assert.deepEqual((await ascending.find(MASTER)).map((o) => o.get('name')), [
      'first', 'second', 'third',
    ]);
  });

  it("answers 102 with Parse's message for invalid $regex options, accepts u", async () => {
    const className = unique('SdkRegexOptions');
    await createClass(className, (s) => s.addString('name'));
    await seed(className, [{ name: 'Football' }]);
    const bad = new Parse.Query(className);
    bad.matches('name', 'foot', 'some invalid option');
    const error = await rejectsWithCode(bad.find(MASTER), 102);
    assert.equal(error.message, 'Bad $options value for query: some invalid option');
    const unicode = new Parse.Query(className);
    unicode.matches('name', 'foot', 'iu');
    assert.equal((await unicode.find(MASTER)).length, 1);
  });
});

describe('schema details', () => {
  it('echoes a field\'s defaultValue in the schema and applies it on create', async () => {
    const className = unique('SdkDefaults');
    const schema = new Parse.Schema(className);
    schema.addNumber('score', { defaultValue: 7 });
    schema.addString('label', { defaultValue: 'none', required: true });
    schema.addDate('due', { defaultValue: new Date('2026-01-02T03:04:05.000Z') });
    await schema.save();
    const fields = await fieldsOf(className);
    assert.deepEqual(fields.score, { type: 'Number', defaultValue: 7 });
    assert.deepEqual(fields.label, { type: 'String', required: true, defaultValue: 'none' });

    const object = new Parse.Object(className);
    await object.save(null, MASTER);
    // The create's answer carries the defaults: the SDK has them without a fetch.
    assert.equal(object.get('score'), 7);
    assert.equal(object.get('label'), 'none');
    assert.equal(object.get('due').toISOString(), '2026-01-02T03:04:05.000Z');
    const unset = new Parse.Object(className);
    unset.unset('score');
    await unset.save(null, MASTER);
    const fresh = await new Parse.Query(className).get(unset.id, MASTER);
    assert.equal(fresh.get('score'), 7);

    const wrong = new Parse.Schema(className);
    wrong.addNumber('bad', { defaultValue: 'x' });
    const error = await rejectsWithCode(wrong.update(), 111);
    assert.equal(
      error.message,
      `schema mismatch for ${className}.bad default value; expected Number but got String`,
    );
  });

  it('adds and deletes an index through /schemas', async () => {
    const className = unique('SdkIndexes');
    const schema = new Parse.Schema(className);
    schema.addString('name');
    schema.addIndex('by_name', { name: 1 });
    await schema.save();
    assert.deepEqual((await new Parse.Schema(className).get()).indexes.by_name, { name: 1 });
    const again = new Parse.Schema(className);
    again.deleteIndex('by_name');
    await again.update();
    // As Parse: the answer keeps its indexes (the primary key), without the deleted one.
    assert.deepEqual((await new Parse.Schema(className).get()).indexes, { _id_: { _id: 1 } });
    const missing = new Parse.Schema(className);
    missing.deleteIndex('by_name');
    const error = await rejectsWithCode(missing.update(), 102);
    assert.equal(error.message, 'Index by_name does not exist, cannot delete.');
  });

  it('refuses invalid class-level permissions with Parse\'s messages (107)', async () => {
    const className = unique('SdkClp');
    await createClass(className, (s) => s.addString('name').addPointer('owner', '_User'));
    const cases = [
      [{ find: { '*': 'yes' } }, "'yes' is not a valid value for class level permissions acl find:*"],
      [{ find: { 'someone:x': true } }, "'someone:x' is not a valid key for class level permissions"],
      [{ fetch: { '*': true } }, 'fetch is not a valid operation for class level permissions'],
      [{ readUserFields: ['name'] }, "'name' is not a valid column for class level pointer permissions readUserFields"],
      [{ protectedFields: { '*': ['createdAt'] } }, "Default field 'createdAt' can not be protected"],
      [{ protectedFields: { '*': ['nope'] } }, "Field 'nope' in protectedFields:* does not exist"],
    ];
    for (const [clp, message] of cases) {
      const schema = new Parse.Schema(className);
      schema.setCLP(clp);
      const error = await rejectsWithCode(schema.update(), 107);
      assert.equal(error.message, message);
    }
    const valid = new Parse.Schema(className);
    valid.setCLP({ find: { requiresAuthentication: true }, readUserFields: ['owner'] });
    await valid.update();
  });
});

describe('LiveQuery watch', () => {
  it('fires create only when the object gives a watched field a value', async () => {
    const className = unique('SdkWatch');
    await createClass(className, (s) => s.addString('name').addNumber('score'));
    const client = new Parse.LiveQueryClient({
      applicationId: Parse.applicationId,
      serverURL: Parse.serverURL.replace(/^http/, 'ws'),
    });
    client.open();
    try {
      const query = new Parse.Query(className);
      query.watch('score');
      const subscription = client.subscribe(query);
      await new Promise((resolve) => subscription.on('open', resolve));
      const created = [];
      subscription.on('create', (object) => created.push(object.get('name')));
      await seed(className, [{ name: 'unwatched' }]);
      await seed(className, [{ name: 'watched', score: 3 }]);
      const deadline = Date.now() + 10000;
      while (!created.includes('watched') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.deepEqual(created, ['watched']);
    } finally {
      await client.close();
    }
  });
});
