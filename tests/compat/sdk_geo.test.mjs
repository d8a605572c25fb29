// Geo through the official SDK (issue 18): GeoPoint and Polygon fields, near / within queries
// with each distance unit, boxes, polygons, polygonContains, and the SDK's POST-form health
// call. Places and expectations follow the SDK's own integration tests (ParseGeoPointTest,
// ParseGeoBoxTest, ParsePolygonTest). Reads are anonymous; the fixtures are public.

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import { MASTER, Parse, createClass, rejectsWithCode, seed, sortedValues, unique, values } from './support.mjs';

const SFO = new Parse.GeoPoint(37.6189722, -122.3748889);
let places;

function q() {
  return new Parse.Query(places);
}

before(async () => {
  places = unique('SdkGeo');
  await createClass(places, (s) => s.addString('name').addGeoPoint('location'));
  await seed(places, [
    { name: 'Sacramento', location: new Parse.GeoPoint(38.52, -121.5) },
    { name: 'Honolulu', location: new Parse.GeoPoint(21.35, -157.93) },
    { name: 'San Francisco', location: new Parse.GeoPoint(37.75, -122.68) },
  ]);
});

describe('GeoPoint fields', () => {
  it('saves and fetches a GeoPoint', async () => {
    const object = new Parse.Object(unique('SdkGeoSave'));
    object.set('location', new Parse.GeoPoint(44.0, -11.0));
    await object.save(null, MASTER);
    const fetched = await new Parse.Query(object.className).get(object.id, MASTER);
    assert.equal(fetched.get('location').latitude, 44.0);
    assert.equal(fetched.get('location').longitude, -11.0);
  });

  it('stores only one GeoPoint field per class', async () => {
    const object = new Parse.Object(unique('SdkGeoTwo'));
    object.set('locationOne', new Parse.GeoPoint(20, 20));
    object.set('locationTwo', new Parse.GeoPoint(20, 20));
    await rejectsWithCode(object.save(null, MASTER), Parse.Error.INCORRECT_TYPE);
  });

  it('near: nearest first, with no limit on distance', async () => {
    assert.deepEqual(values(await q().near('location', SFO).find()), [
      'San Francisco',
      'Sacramento',
      'Honolulu',
    ]);
  });

  for (const [unit, limits] of [
    ['Kilometers', [[4000, 3], [3700, 2], [100, 1], [10, 0]]],
    ['Miles', [[2500, 3], [2200, 2], [75, 1], [10, 0]]],
    ['Radians', [[0.7, 3], [0.6, 2], [0.01, 1], [0.001, 0]]],
  ]) {
    for (const [max, count] of limits) {
      it(`within${unit} ${max}, sorted and unsorted`, async () => {
        const sorted = await q()[`within${unit}`]('location', SFO, max).find();
        const expected = ['San Francisco', 'Sacramento', 'Honolulu'].slice(0, count);
        assert.deepEqual(values(sorted), expected);
        const unsorted = await q()[`within${unit}`]('location', SFO, max, false).find();
        assert.deepEqual(sortedValues(unsorted), [...expected].sort());
      });
    }
  }

  it('sequences a line of points by distance', async () => {
    const line = unique('SdkGeoLine');
    await seed(
      line,
      Array.from({ length: 10 }, (_, i) => ({
        seq: i,
        location: new Parse.GeoPoint(i * 4 - 12, i * 3.2 - 11),
      })),
    );
    const found = await new Parse.Query(line)
      .withinMiles('location', new Parse.GeoPoint(24, 19), 10000)
      .find(MASTER);
    assert.deepEqual(values(found, 'seq'), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  });

  it('withinGeoBox, with the corners in either order', async () => {
    const southWest = new Parse.GeoPoint(37.708813, -122.826398);
    const northEast = new Parse.GeoPoint(37.822802, -122.373962);
    assert.deepEqual(values(await q().withinGeoBox('location', southWest, northEast).find()), [
      'San Francisco',
    ]);
    assert.deepEqual(values(await q().withinGeoBox('location', northEast, southWest).find()), [
      'San Francisco',
    ]);
  });

  it('withinPolygon, open and closed paths', async () => {
    const open = [
      new Parse.GeoPoint(37.85, -122.33),
      new Parse.GeoPoint(37.85, -122.9),
      new Parse.GeoPoint(37.68, -122.9),
      new Parse.GeoPoint(37.68, -122.33),
    ];
    assert.deepEqual(values(await q().withinPolygon('location', open).find()), ['San Francisco']);
    const closed = [
      new Parse.GeoPoint(38.52, -121.5),
      new Parse.GeoPoint(37.75, -157.93),
      new Parse.GeoPoint(37.578072, -121.379914),
      new Parse.GeoPoint(38.52, -121.5),
    ];
    const found = await q().withinPolygon('location', closed).find();
    assert.deepEqual(sortedValues(found), ['Sacramento', 'San Francisco']);
  });

  it('withinPolygon refuses what is not a polygon (107)', async () => {
    await rejectsWithCode(q().withinPolygon('location', 1234).find(), Parse.Error.INVALID_JSON);
    await rejectsWithCode(q().withinPolygon('location', [1234]).find(), Parse.Error.INVALID_JSON);
  });

  it('counts a near query', async () => {
    assert.equal(await q().withinKilometers('location', SFO, 3700).count(), 2);
  });
});

describe('Polygon fields', () => {
  let areas;

  before(async () => {
    areas = unique('SdkPolygon');
    await createClass(areas, (s) => s.addString('name').addPolygon('polygon'));
    await seed(areas, [
      { name: 'p1', polygon: new Parse.Polygon([[0, 0], [0, 1], [1, 1], [1, 0]]) },
      { name: 'p2', polygon: new Parse.Polygon([[0, 0], [0, 2], [2, 2], [2, 0]]) },
      { name: 'p3', polygon: new Parse.Polygon([[10, 10], [10, 15], [15, 15], [15, 10], [10, 10]]) },
    ]);
  });

  it('saves a polygon closed and finds it by the open or the closed ring', async () => {
    const open = [[0, 0], [0, 1], [1, 1], [1, 0]];
    const closed = [...open, [0, 0]];
    for (const ring of [open, closed]) {
      const found = await new Parse.Query(areas).equalTo('polygon', new Parse.Polygon(ring)).find();
      assert.deepEqual(values(found), ['p1']);
      assert.deepEqual(found[0].get('polygon').coordinates, closed);
    }
  });

  it('polygonContains', async () => {
    const found = await new Parse.Query(areas)
      .polygonContains('polygon', new Parse.GeoPoint(0.5, 0.5))
      .find();
    assert.deepEqual(sortedValues(found), ['p1', 'p2']);
  });

  it('polygonContains refuses what is not a GeoPoint (107)', async () => {
    await rejectsWithCode(
      new Parse.Query(areas).polygonContains('polygon', 1234).find(),
      Parse.Error.INVALID_JSON,
    );
  });
});

describe('Request forms', () => {
  it('Parse.getServerHealth() (POST /health with _method GET)', async () => {
    assert.deepEqual(await Parse.getServerHealth(), { status: 'ok' });
  });
});
