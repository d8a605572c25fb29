// Aggregation (issue 15) through the official SDK: query.aggregate() and query.distinct(), which
// send the master key. Data and expectations follow Parse Server's ParseQuery.Aggregate.spec.

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import { MASTER, Parse, rejectsWithCode, seed, unique } from './support.mjs';

let className;
let target;
let targets;

function q() {
  return new Parse.Query(className);
}

before(async () => {
  className = unique('SdkAgg');
  target = unique('SdkAggTarget');
  targets = await seed(target, [{}, {}]);
  await seed(className, [
    { score: 10, name: 'foo', sender: { group: 'A' }, views: 900, size: ['S', 'M'], pointer: targets[0] },
    { score: 10, name: 'foo', sender: { group: 'A' }, views: 800, size: ['M', 'L'], pointer: targets[1] },
    { score: 10, name: 'bar', sender: { group: 'B' }, views: 700, size: ['S'], pointer: targets[0] },
    { score: 20, name: 'dpl', sender: { group: 'B' }, views: 700, size: ['S'], when: new Date('2020-03-04T05:06:07Z') },
  ]);
});

describe('query.aggregate', () => {
  it('groups with accumulators', async () => {
    const [row] = await q().aggregate([
      { $group: { _id: null, total: { $sum: '$score' }, n: { $sum: 1 }, avg: { $avg: '$score' }, top: { $max: '$score' } } },
    ]);
    assert.deepEqual(row, { objectId: null, total: 50, n: 4, avg: 12.5, top: 20 });
  });

  it('groups by a field, sorts and limits the groups', async () => {
    const rows = await q().aggregate([
      { $group: { _id: '$name', views: { $sum: '$views' } } },
      { $sort: { views: -1, _id: 1 } },
      { $limit: 2 },
    ]);
    assert.deepEqual(rows, [
      { objectId: 'foo', views: 1700 },
      { objectId: 'bar', views: 700 },
    ]);
  });

  it('prepends the query constraints as $match', async () => {
    const rows = await q().equalTo('name', 'foo').aggregate({ $group: { _id: null, n: { $sum: 1 } } });
    assert.deepEqual(rows, [{ objectId: null, n: 2 }]);
  });

  it('matches Dates sent as JSON and groups by date parts', async () => {
    const rows = await q().aggregate([
      { $match: { when: { $lt: new Date('2021-01-01T00:00:00Z') } } },
      { $group: { _id: { year: { $year: '$when' }, month: { $month: '$when' } }, n: { $sum: 1 } } },
    ]);
    assert.deepEqual(rows, [{ objectId: { year: 2020, month: 3 }, n: 1 }]);
  });

  it('without a group is a find: match, sort, skip, project', async () => {
    const rows = await q().aggregate([
      { $match: { score: { $gt: 5, $lt: 15 } } },
      { $sort: { views: 1 } },
      { $skip: 1 },
      { $project: { views: 1 } },
    ]);
    assert.deepEqual(rows.map((r) => r.views), [800, 900]);
    assert.ok(rows.every((r) => r.objectId && r.name === undefined));
  });

  it('refuses what Parse refuses', async () => {
    await rejectsWithCode(q().aggregate([{ $group: { objectId: '$name' } }]), Parse.Error.INVALID_QUERY);
    await rejectsWithCode(q().aggregate([{ $group: {} }]), Parse.Error.INVALID_QUERY);
  });
});

describe('query.distinct', () => {
  it('scalars, arrays, nested and pointers', async () => {
    assert.deepEqual((await q().distinct('score')).sort(), [10, 20]);
    assert.deepEqual((await q().distinct('size')).sort(), ['L', 'M', 'S']);
    assert.deepEqual((await q().distinct('sender.group')).sort(), ['A', 'B']);
    const pointers = await q().distinct('pointer');
    assert.deepEqual(pointers.map((p) => p.objectId).sort(), targets.map((t) => t.id).sort());
    assert.ok(pointers.every((p) => p.__type === 'Pointer' && p.className === target));
  });

  it('applies the query', async () => {
    assert.deepEqual(await q().equalTo('name', 'dpl').distinct('score'), [20]);
  });

  it('needs the master key', async () => {
    await assert.rejects(
      Parse._request('GET', `aggregate/${className}`, { distinct: 'score' }, { useMasterKey: false }),
      (error) => error.message === 'unauthorized: master key is required',
    );
  });
});
