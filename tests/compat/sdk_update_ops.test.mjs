// Update operators (__op) through the official SDK: Increment, Add, AddUnique, Remove, Delete,
// AddRelation / RemoveRelation (and $relatedTo queries to read relations back).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MASTER, Parse, createClass, pointerTo, seed, sortedValues, unique } from './support.mjs';

/**
 * Save one object of a fresh class with `attrs`; returns it. `define(schema)` may declare
 * fields up front, so that a later anonymous write does not have to add them.
 */
async function saveOne(prefix, attrs, define) {
  const className = unique(prefix);
  if (define) await createClass(className, define);
  const [object] = await seed(className, [attrs]);
  return object;
}

/** A second, independent copy of `object` as stored on the server. */
async function reload(object) {
  return new Parse.Query(object.className).get(object.id, MASTER);
}

describe('increment', () => {
  it('increments and decrements a number', async () => {
    const object = await saveOne('SdkCounter', { n: 10 });
    object.increment('n');
    await object.save();
    assert.equal(object.get('n'), 11);
    object.increment('n', 5);
    await object.save();
    object.decrement('n', 3);
    await object.save();
    assert.equal((await reload(object)).get('n'), 13);
  });

  it('treats a missing field as 0 and accepts fractions', async () => {
    const object = await saveOne('SdkCounter', { label: 'x' }, (schema) => schema.addNumber('n'));
    object.increment('n', 0.5);
    await object.save();
    object.increment('n', 0.25);
    await object.save();
    assert.equal((await reload(object)).get('n'), 0.75);
  });

  it('applies concurrent increments atomically and echoes the new value', async () => {
    const object = await saveOne('SdkCounter', { n: 0 });
    const first = await reload(object);
    const second = await reload(object);
    first.increment('n', 1);
    second.increment('n', 5);
    await first.save();
    await second.save();
    assert.equal((await reload(object)).get('n'), 6, 'stored value');
    // The SDK takes the value echoed in the PUT response; without the echo it would show 5.
    assert.equal(second.get('n'), 6, 'value echoed to the second writer');
  });

  it('creates an object with an Increment op', async () => {
    const className = unique('SdkCounter');
    const object = new Parse.Object(className);
    object.increment('n', 3);
    await object.save(null, MASTER);
    assert.equal((await reload(object)).get('n'), 3);
  });

  it('increments a key inside an Object field (dot path)', async () => {
    const object = await saveOne('SdkCounter', { stats: { views: 1, label: 'x' } });
    object.increment('stats.views', 2);
    await object.save();
    assert.deepEqual((await reload(object)).get('stats'), { views: 3, label: 'x' });
  });
});

describe('set inside an Object field (dot path)', () => {
  it('sets one nested key and keeps the others', async () => {
    const object = await saveOne('SdkNested', { meta: { color: 'red', size: 1 } });
    object.set('meta.color', 'blue');
    await object.save();
    assert.deepEqual((await reload(object)).get('meta'), { color: 'blue', size: 1 });
  });
});

describe('array operators', () => {
  it('add appends, keeping duplicates', async () => {
    const object = await saveOne('SdkArray', { tags: ['a'] });
    object.add('tags', 'b');
    await object.save();
    object.addAll('tags', ['a', 'c']);
    await object.save();
    assert.deepEqual((await reload(object)).get('tags'), ['a', 'b', 'a', 'c']);
  });

  it('add creates a missing array', async () => {
    const object = await saveOne('SdkArray', { label: 'x' }, (schema) => schema.addArray('tags'));
    object.add('tags', 'first');
    await object.save();
    assert.deepEqual((await reload(object)).get('tags'), ['first']);
  });

  it('addUnique appends only new items', async () => {
    const object = await saveOne('SdkArray', { tags: ['a', 'b'] });
    object.addAllUnique('tags', ['b', 'c', 'c']);
    await object.save();
    // Parse Server on PostgreSQL does not keep the order for AddUnique: compare as sets.
    assert.deepEqual((await reload(object)).get('tags').sort(), ['a', 'b', 'c']);
  });

  it('addUnique compares pointers by class and id', async () => {
    const ownerClass = unique('SdkOwner');
    const [ann, bob] = await seed(ownerClass, [{ name: 'ann' }, { name: 'bob' }]);
    const object = await saveOne('SdkArray', { people: [ann] });
    object.addAllUnique('people', [pointerTo(ownerClass, ann.id), bob]);
    await object.save();
    const people = (await reload(object)).get('people');
    assert.deepEqual(people.map((p) => p.id).sort(), [ann.id, bob.id].sort());
  });

  it('remove deletes every occurrence', async () => {
    const object = await saveOne('SdkArray', { tags: ['a', 'b', 'a', 'c'] });
    object.remove('tags', 'a');
    await object.save();
    assert.deepEqual((await reload(object)).get('tags'), ['b', 'c']);
    object.removeAll('tags', ['b', 'zzz']);
    await object.save();
    assert.deepEqual((await reload(object)).get('tags'), ['c']);
  });

  it('remove of pointers', async () => {
    const ownerClass = unique('SdkOwner');
    const [ann, bob] = await seed(ownerClass, [{ name: 'ann' }, { name: 'bob' }]);
    const object = await saveOne('SdkArray', { people: [ann, bob] });
    object.remove('people', pointerTo(ownerClass, ann.id));
    await object.save();
    assert.deepEqual(
      (await reload(object)).get('people').map((p) => p.id),
      [bob.id],
    );
  });

  it('echoes the resulting array to the writer', async () => {
    const object = await saveOne('SdkArray', { tags: ['a'] });
    const other = await reload(object);
    other.add('tags', 'b');
    await other.save();
    object.add('tags', 'c');
    await object.save();
    assert.deepEqual(object.get('tags'), ['a', 'b', 'c']);
  });
});

describe('unset', () => {
  it('removes a field', async () => {
    const object = await saveOne('SdkUnset', { keep: 1, drop: 'x' });
    object.unset('drop');
    await object.save();
    const fresh = await reload(object);
    assert.equal(fresh.has('drop'), false);
    assert.equal(fresh.get('keep'), 1);
    const found = await new Parse.Query(object.className).doesNotExist('drop').find();
    assert.deepEqual(
      found.map((o) => o.id),
      [object.id],
    );
  });
});

describe('relations', () => {
  /** A fresh parent class (declaring the relation) with one parent and three members. */
  async function relationFixture() {
    const memberClass = unique('SdkMember');
    const members = await seed(memberClass, [{ name: 'm1' }, { name: 'm2' }, { name: 'm3' }]);
    const parent = await saveOne('SdkTeam', { name: 'team' }, (schema) =>
      schema.addString('name').addRelation('members', memberClass),
    );
    return { parent, members, memberClass };
  }

  it('relation.add() then relation.query() ($relatedTo) finds the members', async () => {
    const { parent, members } = await relationFixture();
    parent.relation('members').add([members[0], members[1]]);
    await parent.save();

    const found = await parent.relation('members').query().find();
    assert.deepEqual(sortedValues(found), ['m1', 'm2']);
  });

  it('the relation field reads back as a Relation with its target class', async () => {
    const { parent, members, memberClass } = await relationFixture();
    parent.relation('members').add(members[0]);
    await parent.save();

    const fresh = await reload(parent);
    const relation = fresh.get('members');
    assert.ok(relation instanceof Parse.Relation, `got ${JSON.stringify(relation)}`);
    assert.equal(relation.targetClassName, memberClass);
    assert.deepEqual(sortedValues(await fresh.relation('members').query().find()), ['m1']);
  });

  it('relation.query() on an unfetched parent uses redirectClassNameForKey', async () => {
    const { parent, members } = await relationFixture();
    parent.relation('members').add(members);
    await parent.save();

    const unfetched = pointerTo(parent.className, parent.id);
    const query = unfetched.relation('members').query();
    assert.equal(query.className, parent.className, 'SDK does not know the target class');
    const found = await query.find();
    assert.equal(found[0].className, members[0].className);
    assert.deepEqual(sortedValues(found), ['m1', 'm2', 'm3']);
    // first() and get() read each object's className, not the answer's.
    const first = await unfetched.relation('members').query().first();
    assert.equal(first.className, members[0].className);
  });

  it('relation.remove() drops a member; queries can add constraints', async () => {
    const { parent, members } = await relationFixture();
    parent.relation('members').add(members);
    await parent.save();
    parent.relation('members').remove(members[1]);
    await parent.save();

    const query = parent.relation('members').query();
    assert.deepEqual(sortedValues(await query.find()), ['m1', 'm3']);
    assert.equal(await parent.relation('members').query().count(), 2);
    const filtered = parent.relation('members').query().equalTo('name', 'm3');
    assert.deepEqual(sortedValues(await filtered.find()), ['m3']);
  });

  it('add and remove in one save (Batch op)', async () => {
    const { parent, members } = await relationFixture();
    parent.relation('members').add([members[0], members[1]]);
    await parent.save();
    const relation = parent.relation('members');
    relation.remove(members[0]);
    relation.add(members[2]);
    await parent.save();
    assert.deepEqual(sortedValues(await parent.relation('members').query().find()), ['m2', 'm3']);
  });

  it('relations of different parents are independent', async () => {
    const { parent, members } = await relationFixture();
    const other = new Parse.Object(parent.className);
    other.relation('members').add(members[2]);
    await other.save();
    parent.relation('members').add(members[0]);
    await parent.save();
    assert.deepEqual(sortedValues(await parent.relation('members').query().find()), ['m1']);
    assert.deepEqual(sortedValues(await other.relation('members').query().find()), ['m3']);
  });

  it('the first AddRelation on a new field creates it (schema on write)', async () => {
    const memberClass = unique('SdkMember');
    const [member] = await seed(memberClass, [{ name: 'm1' }]);
    const parent = await saveOne('SdkTeam', { name: 'team' });
    parent.relation('members').add(member);
    await parent.save(null, MASTER);

    const { fields } = await new Parse.Schema(parent.className).get();
    assert.deepEqual(fields.members, { type: 'Relation', targetClass: memberClass });
    assert.deepEqual(sortedValues(await parent.relation('members').query().find()), ['m1']);
  });

  it('equalTo(relationKey, member) finds the parents holding it', async () => {
    const { parent, members } = await relationFixture();
    const other = new Parse.Object(parent.className);
    other.set('name', 'other');
    other.relation('members').add(members[1]);
    await other.save();
    parent.relation('members').add([members[0], members[1]]);
    await parent.save();

    const holders = await new Parse.Query(parent.className).equalTo('members', members[0]).find();
    assert.deepEqual(sortedValues(holders), ['team']);
    const both = await new Parse.Query(parent.className).equalTo('members', members[1]).find();
    assert.deepEqual(sortedValues(both), ['other', 'team']);
  });
});
