// Object ACLs through the official SDK. Fixtures are written with the master key; reads and
// writes "as anonymous" pass ANONYMOUS ({useMasterKey: false}), so the SDK sends no master key
// and no session token. An object the caller may not read is indistinguishable from a missing
// one: get/fetch/update/destroy answer 101 and queries, counts and subqueries skip it.

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import {
  ANONYMOUS,
  MASTER,
  Parse,
  pointerTo,
  rejectsWithCode,
  sortedValues,
  unique,
  values,
} from './support.mjs';

/** An ACL readable by everyone (and writable by nobody but the master key). */
function publicReadAcl() {
  const acl = new Parse.ACL();
  acl.setPublicReadAccess(true);
  return acl;
}

/** Save (with the master key) objects of `className`; each row is [attrs, acl or null]. */
async function seedWithAcl(className, rows) {
  const objects = rows.map(([attrs, acl]) => {
    const object = new Parse.Object(className);
    object.set(attrs);
    if (acl) object.setACL(acl);
    return object;
  });
  return Parse.Object.saveAll(objects, MASTER);
}

describe('ACL: no public access (new Parse.ACL())', () => {
  let className;
  let hidden;

  before(async () => {
    className = unique('SdkAclPrivate');
    [hidden] = await seedWithAcl(className, [
      [{ name: 'hidden' }, new Parse.ACL()],
      [{ name: 'visible' }, publicReadAcl()],
    ]);
  });

  it('is left out of anonymous find() and count()', async () => {
    assert.deepEqual(sortedValues(await new Parse.Query(className).find(ANONYMOUS)), ['visible']);
    assert.equal(await new Parse.Query(className).count(ANONYMOUS), 1);
  });

  it('is returned to the master key', async () => {
    assert.deepEqual(sortedValues(await new Parse.Query(className).find(MASTER)), [
      'hidden',
      'visible',
    ]);
    assert.equal((await new Parse.Query(className).get(hidden.id, MASTER)).get('name'), 'hidden');
  });

  it('answers 101 to an anonymous get() and fetch()', async () => {
    await rejectsWithCode(new Parse.Query(className).get(hidden.id, ANONYMOUS), 101);
    await rejectsWithCode(pointerTo(className, hidden.id).fetch(ANONYMOUS), 101);
  });

  it('answers 101 to an anonymous update and destroy, and stays unchanged', async () => {
    const copy = pointerTo(className, hidden.id);
    copy.set('name', 'tampered');
    await rejectsWithCode(copy.save(null, ANONYMOUS), 101);
    await rejectsWithCode(pointerTo(className, hidden.id).destroy(ANONYMOUS), 101);
    assert.equal((await new Parse.Query(className).get(hidden.id, MASTER)).get('name'), 'hidden');
  });

  it('round-trips as an empty ACL', async () => {
    const fresh = await new Parse.Query(className).get(hidden.id, MASTER);
    assert.deepEqual(fresh.getACL().toJSON(), {});
  });
});

describe('ACL: public read', () => {
  it('is visible to anonymous find() and get(), but not writable', async () => {
    const className = unique('SdkAclRead');
    const [object] = await seedWithAcl(className, [[{ name: 'shown' }, publicReadAcl()]]);

    assert.deepEqual(sortedValues(await new Parse.Query(className).find(ANONYMOUS)), ['shown']);
    const got = await new Parse.Query(className).get(object.id, ANONYMOUS);
    assert.equal(got.get('name'), 'shown');
    assert.equal(got.getACL().getPublicReadAccess(), true);
    assert.equal(got.getACL().getPublicWriteAccess(), false);

    got.set('name', 'changed');
    await rejectsWithCode(got.save(null, ANONYMOUS), 101);
    await rejectsWithCode(pointerTo(className, object.id).destroy(ANONYMOUS), 101);
    assert.equal((await new Parse.Query(className).get(object.id, MASTER)).get('name'), 'shown');
  });

  it('public read and write lets anonymous update and destroy', async () => {
    const className = unique('SdkAclReadWrite');
    const acl = publicReadAcl();
    acl.setPublicWriteAccess(true);
    const [object] = await seedWithAcl(className, [[{ name: 'open' }, acl]]);

    const copy = pointerTo(className, object.id);
    copy.set('name', 'edited');
    await copy.save(null, ANONYMOUS);
    assert.equal(
      (await new Parse.Query(className).get(object.id, ANONYMOUS)).get('name'),
      'edited',
    );
    await pointerTo(className, object.id).destroy(ANONYMOUS);
    await rejectsWithCode(new Parse.Query(className).get(object.id, MASTER), 101);
  });

  it('an object saved without an ACL is public read and write', async () => {
    const className = unique('SdkAclNone');
    const [object] = await seedWithAcl(className, [[{ name: 'plain' }, null]]);
    const copy = await new Parse.Query(className).get(object.id, ANONYMOUS);
    copy.set('name', 'edited');
    await copy.save(null, ANONYMOUS);
    assert.equal((await new Parse.Query(className).get(object.id, MASTER)).get('name'), 'edited');
  });
});

describe('ACL: user- and role-only access', () => {
  it('an ACL naming only a user or a role hides the object from anonymous', async () => {
    const className = unique('SdkAclNamed');
    const userOnly = new Parse.ACL();
    userOnly.setReadAccess('someUserId', true);
    userOnly.setWriteAccess('someUserId', true);
    const roleOnly = new Parse.ACL();
    roleOnly.setRoleReadAccess('Clinicians', true);
    const [u, r] = await seedWithAcl(className, [
      [{ name: 'user-only' }, userOnly],
      [{ name: 'role-only' }, roleOnly],
    ]);

    assert.deepEqual(await new Parse.Query(className).find(ANONYMOUS), []);
    await rejectsWithCode(new Parse.Query(className).get(u.id, ANONYMOUS), 101);
    await rejectsWithCode(new Parse.Query(className).get(r.id, ANONYMOUS), 101);

    const stored = await new Parse.Query(className).get(u.id, MASTER);
    assert.deepEqual(stored.getACL().toJSON(), { someUserId: { read: true, write: true } });
    const role = await new Parse.Query(className).get(r.id, MASTER);
    assert.deepEqual(role.getACL().toJSON(), { 'role:Clinicians': { read: true } });
  });

  it('changing the ACL with the master key changes what anonymous sees', async () => {
    const className = unique('SdkAclChange');
    const [object] = await seedWithAcl(className, [[{ name: 'later' }, new Parse.ACL()]]);
    await rejectsWithCode(new Parse.Query(className).get(object.id, ANONYMOUS), 101);

    object.setACL(publicReadAcl());
    await object.save(null, MASTER);
    assert.equal((await new Parse.Query(className).get(object.id, ANONYMOUS)).get('name'), 'later');
  });
});

describe('ACL: queries only ever see readable rows', () => {
  let className;

  before(async () => {
    className = unique('SdkAclMixed');
    const rows = [1, 2, 3, 4, 5, 6].map((n) => [
      { n, name: `o${n}` },
      n % 2 === 0 ? new Parse.ACL() : publicReadAcl(),
    ]);
    await seedWithAcl(className, rows);
  });

  it('limit, skip and order apply to the readable rows only', async () => {
    const query = new Parse.Query(className).ascending('n');
    assert.deepEqual(values(await query.find(ANONYMOUS)), ['o1', 'o3', 'o5']);
    const page = new Parse.Query(className).ascending('n').skip(1).limit(1);
    assert.deepEqual(values(await page.find(ANONYMOUS)), ['o3']);
    const first = await new Parse.Query(className).descending('n').first(ANONYMOUS);
    assert.equal(first.get('name'), 'o5');
  });

  it('count and withCount count the readable rows only', async () => {
    assert.equal(await new Parse.Query(className).count(ANONYMOUS), 3);
    const { count } = await new Parse.Query(className).limit(1).withCount().find(ANONYMOUS);
    assert.equal(count, 3);
    assert.equal(await new Parse.Query(className).count(MASTER), 6);
  });

  it('constraints that target hidden rows find nothing', async () => {
    assert.deepEqual(await new Parse.Query(className).equalTo('n', 2).find(ANONYMOUS), []);
    const either = Parse.Query.or(
      new Parse.Query(className).equalTo('n', 2),
      new Parse.Query(className).equalTo('n', 3),
    );
    assert.deepEqual(values(await either.find(ANONYMOUS)), ['o3']);
  });
});

describe('ACL: no leaks through include, subqueries or relations', () => {
  let ownerClass;
  let itemClass;
  let teamClass;
  let secret;
  let open;
  let team;

  before(async () => {
    ownerClass = unique('SdkAclOwner');
    itemClass = unique('SdkAclItem');
    teamClass = unique('SdkAclTeam');
    [secret, open] = await seedWithAcl(ownerClass, [
      [{ label: 'secret', diagnosis: 'do not leak' }, new Parse.ACL()],
      [{ label: 'open', diagnosis: 'fine' }, publicReadAcl()],
    ]);
    await seedWithAcl(itemClass, [
      [{ name: 'to-secret', owner: secret, ownerLabel: 'secret' }, publicReadAcl()],
      [{ name: 'to-open', owner: open, ownerLabel: 'open' }, publicReadAcl()],
    ]);
    team = new Parse.Object(teamClass);
    team.setACL(publicReadAcl());
    team.relation('members').add([secret, open]);
    await team.save(null, MASTER);
  });

  it('include does not expand a pointer to an unreadable object', async () => {
    const items = await new Parse.Query(itemClass).include('owner').find(ANONYMOUS);
    const toSecret = items.find((item) => item.get('name') === 'to-secret');
    const owner = toSecret.get('owner');
    assert.ok(owner === undefined || owner.get('diagnosis') === undefined, 'hidden fields leaked');
    const toOpen = items.find((item) => item.get('name') === 'to-open');
    assert.equal(toOpen.get('owner').get('diagnosis'), 'fine');
  });

  it("matchesQuery and matchesKeyInQuery run their subquery with the caller's rights", async () => {
    const secretOwners = () => new Parse.Query(ownerClass).equalTo('label', 'secret');
    const viaPointer = new Parse.Query(itemClass).matchesQuery('owner', secretOwners());
    assert.deepEqual(await viaPointer.find(ANONYMOUS), []);
    const viaKey = new Parse.Query(itemClass).matchesKeyInQuery(
      'ownerLabel',
      'label',
      secretOwners(),
    );
    assert.deepEqual(await viaKey.find(ANONYMOUS), []);
    assert.deepEqual(sortedValues(await viaPointer.find(MASTER)), ['to-secret']);
  });

  it('relation.query() returns only readable members', async () => {
    const members = await team.relation('members').query().find(ANONYMOUS);
    assert.deepEqual(sortedValues(members, 'label'), ['open']);
    const all = await team.relation('members').query().find(MASTER);
    assert.deepEqual(sortedValues(all, 'label'), ['open', 'secret']);
  });
});
