/**
 * The MongoDB adapter's pure parts (no server can be installed here): index specifications,
 * filters and update documents, document mapping through real BSON, driver-error translation,
 * the deployment check, and the opening path through the real driver against a fake standalone
 * server and an unreachable one. The full contract runs in test/contract/mongodb-contract.test.ts
 * when KAKUIN_TEST_MONGODB_URI is set.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  Binary, BSON, MongoNetworkError, MongoServerError, MongoServerSelectionError, MongoTopologyClosedError, MongoWriteConcernError,
  ObjectId, type IndexDescription, type TopologyDescription,
} from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import type { CertificateRecord, FeedEntry } from '../../registry/port.js';
import { resumeOptions, FEED_CHANGE_PIPELINE } from '../../registry/mongodb/change-feed.js';
import { CLIENT_DEFAULTS, deploymentSupportsTransactions } from '../../registry/mongodb/connection.js';
import {
  auditEventDoc, auditEventFromDoc, certificateDoc, certificateFromDoc, COLLECTIONS, crlDoc, crlFromDoc, crlNumberKey, deviceFromDoc,
  feedDoc, feedEntryFromDoc, toBuffer, type CertificateDoc, type DeviceDoc,
} from '../../registry/mongodb/documents.js';
import { conflictingIndex, isUnavailable, redactUri, toKakuinError } from '../../registry/mongodb/driver-errors.js';
import { INDEXES, UNIQUE_INDEX_CODES } from '../../registry/mongodb/indexes.js';
import { InFlight, WriteQueue } from '../../registry/mongodb/write-queue.js';
import { openMongoRegistry } from '../../registry/mongodb/index.js';
import {
  auditEventsFind, certificateTransitionFilter, counterIncrement, crlReplaceFilter, deltaChangedFilter, deltaReleasedFilter, devicesFind,
  deviceStatusUpdate, dueSupersedesFind, feedFind, fullCrlFilter, LEGACY_STATES_PIPELINE, legacyFactorsFilter, legacyVerifiersFilter,
  releaseUpdate, revokeOrHoldUpdate, staleFailuresFilter, STATUS_ROW_PROJECTION, STREAM_OPTIONS,
} from '../../registry/mongodb/queries.js';
import { crlRow } from '../../registry/sqlite/signed-objects.js';
import { loadConfig } from '../../cli/config.js';
import { workerRegistry } from '../../cli/wiring.js';
import { expectKakuinError } from '../contract/registry-fixtures.js';
import { freePort } from '../support/index.js';
import { matches } from './mongodb-fake-driver.js';
import { startFakeMongo } from './mongodb-fake-server.js';

function index(collection: string, name: string): IndexDescription {
  const found = (INDEXES[collection as keyof typeof INDEXES] ?? []).find((i) => i.name === name);
  if (found === undefined) throw new Error(`no index ${name} on ${collection}`);
  return found;
}

function duplicateKey(collection: string, indexName: string, keyPattern: Record<string, number>, keyValue: Record<string, unknown>): MongoServerError {
  return new MongoServerError({
    code: 11000,
    errmsg: `E11000 duplicate key error collection: kakuin.${collection} index: ${indexName} dup key: ${JSON.stringify(keyValue)}`,
    keyPattern,
    keyValue,
  });
}

function code(e: unknown): string {
  expect(e).to.be.instanceOf(KakuinError);
  return (e as KakuinError).code;
}

describe('registry/mongodb: index specifications', function () {
  it('makes the serial number unique per manufacturer, not globally', function () {
    expect(index(COLLECTIONS.devices, 'devices_serial_number')).to.deep.include({ key: { manufacturerId: 1, serialNumber: 1 }, unique: true });
    expect(index(COLLECTIONS.devices, 'devices_serial_number').partialFilterExpression).to.equal(undefined);
  });

  for (const [name, field] of [['devices_mac', 'identifiers.mac'], ['devices_imei', 'identifiers.imei'], ['devices_hardware_id', 'identifiers.hardwareId']]) {
    it(`${name}: ${field} unique per manufacturer, only for devices that have one`, function () {
      const spec = index(COLLECTIONS.devices, name);
      expect(spec.key).to.deep.equal({ manufacturerId: 1, [field]: 1 });
      expect(spec.unique).to.equal(true);
      // Not `sparse`: a sparse compound index still indexes a document missing one of the fields.
      expect(spec.sparse).to.equal(undefined);
      expect(spec.partialFilterExpression).to.deep.equal({ [field]: { $type: 'string' } });
    });
  }

  it('keeps legacy credentials unique only while enabled (deleted ones keep their generation, not their claim)', function () {
    for (const name of ['legacy_credentials_factors', 'legacy_credentials_verifier']) {
      const spec = index(COLLECTIONS.legacyCredentials, name);
      expect(spec.unique, name).to.equal(true);
      expect(spec.partialFilterExpression, name).to.deep.equal({ state: { $eq: 'enabled' } });
    }
    expect(index(COLLECTIONS.legacyCredentials, 'legacy_credentials_factors').key).to.deep.equal({ commonAuthId: 1, uniqueId: 1 });
    expect(index(COLLECTIONS.legacyCredentials, 'legacy_credentials_verifier').key).to.deep.equal({ verifierKind: 1, verifier: 1 });
  });

  it('indexes only revoked and held certificates for CRLs, by issuer and feed seq', function () {
    const spec = index(COLLECTIONS.certificates, 'certificates_on_crl');
    expect(spec.key).to.deep.equal({ issuerId: 1, statusSeq: 1 });
    // Exactly the statuses a CRL lists (a partial filter of operators every MongoDB 5.0+ accepts).
    const partial = spec.partialFilterExpression as Record<string, unknown>;
    expect(Object.keys(partial.status as object).every((op) => ['$eq', '$gt', '$gte', '$lt', '$lte', '$type', '$exists'].includes(op))).to.equal(true);
    for (const status of ['good', 'held', 'revoked']) {
      const doc = { issuerId: 'device', status, statusSeq: 1 };
      expect(matches(doc, partial), status).to.equal(status !== 'good');
      // The CRL filters select a subset of the index, so the planner can answer them from it.
      if (matches(doc, fullCrlFilter('device'))) expect(matches(doc, partial), status).to.equal(true);
    }
    expect(index(COLLECTIONS.certificates, 'certificates_released').key).to.deep.equal({ issuerId: 1, releasedSeq: 1 });
  });

  it('has the other unique invariants: names, token and key HMACs, station names per manufacturer', function () {
    expect(index(COLLECTIONS.manufacturers, 'manufacturers_name')).to.deep.include({ key: { name: 1 }, unique: true });
    expect(index(COLLECTIONS.adminTokens, 'admin_tokens_name')).to.deep.include({ key: { name: 1 }, unique: true });
    expect(index(COLLECTIONS.adminTokens, 'admin_tokens_hmac')).to.deep.include({ key: { tokenHmac: 1 }, unique: true });
    expect(index(COLLECTIONS.commonAuthIds, 'common_auth_ids_name')).to.deep.include({ key: { name: 1 }, unique: true });
    expect(index(COLLECTIONS.stations, 'stations_name')).to.deep.include({ key: { manufacturerId: 1, name: 1 }, unique: true });
    expect(index(COLLECTIONS.stations, 'stations_key_hmac')).to.deep.include({ key: { keyHmac: 1 }, unique: true });
  });

  it('names every unique index in the error translation, and no index that does not exist', function () {
    const unique = Object.entries(INDEXES).flatMap(([, specs]) => (specs ?? []).filter((s) => s.unique).map((s) => s.name!));
    const named = Object.keys(UNIQUE_INDEX_CODES).filter((n) => !n.endsWith('._id_'));
    expect([...named].sort()).to.deep.equal([...unique].sort());
    for (const n of Object.keys(UNIQUE_INDEX_CODES).filter((k) => k.endsWith('._id_'))) {
      expect(Object.values(COLLECTIONS), n).to.include(n.slice(0, -'._id_'.length));
    }
  });

  it('gives every index a unique name and only indexes known collections', function () {
    const names = Object.values(INDEXES).flatMap((specs) => (specs ?? []).map((s) => s.name));
    expect(new Set(names).size).to.equal(names.length);
    for (const collection of Object.keys(INDEXES)) expect(Object.values(COLLECTIONS)).to.include(collection);
  });
});

describe('registry/mongodb: filters and update documents', function () {
  it('findDevices: each filter maps to its field, combined with AND, in insertion order', function () {
    expect(devicesFind({})).to.deep.equal({ filter: {}, sort: { ord: 1 }, limit: 100 });
    expect(devicesFind({ manufacturerId: 'm' }).filter).to.deep.equal({ manufacturerId: 'm' });
    expect(devicesFind({ serialNumber: 'SN1' }).filter).to.deep.equal({ serialNumber: 'SN1' });
    expect(devicesFind({ mac: 'aa' }).filter).to.deep.equal({ 'identifiers.mac': 'aa' });
    expect(devicesFind({ imei: '35' }).filter).to.deep.equal({ 'identifiers.imei': '35' });
    expect(devicesFind({ hardwareId: 'hw' }).filter).to.deep.equal({ 'identifiers.hardwareId': 'hw' });
    expect(devicesFind({ status: 'suspended' }).filter).to.deep.equal({ status: 'suspended' });
    expect(devicesFind({ manufacturerId: 'm', mac: 'aa', status: 'active', limit: 7 })).to.deep.equal({
      filter: { manufacturerId: 'm', 'identifiers.mac': 'aa', status: 'active' }, sort: { ord: 1 }, limit: 7,
    });
    expect(devicesFind({ limit: 5000 }).limit).to.equal(1000);
  });

  it('findDevices: refuses operators smuggled in as values, unknown statuses and bad limits', function () {
    for (const query of [{ mac: { $ne: null } }, { manufacturerId: { $gt: '' } }, { status: 'lost' }, { limit: 0 }, { limit: 1.5 }]) {
      expect(() => devicesFind(query as never), JSON.stringify(query)).to.throw(KakuinError).with.property('code', 'KAKUIN_E_VALIDATION');
    }
  });

  it('listAuditEvents: every option, since inclusive, until exclusive, by increasing id', function () {
    const since = new Date('2030-01-01T00:00:00Z');
    const until = new Date('2030-02-01T00:00:00Z');
    expect(auditEventsFind({})).to.deep.equal({ filter: {}, sort: { _id: 1 }, limit: 100 });
    expect(auditEventsFind({ deviceId: 'd', type: 'device.revoked', actor: 'station:s', since, until, afterId: 41, limit: 3 })).to.deep.equal({
      filter: { deviceId: 'd', type: 'device.revoked', actor: 'station:s', at: { $gte: since, $lt: until }, _id: { $gt: 41 } },
      sort: { _id: 1 },
      limit: 3,
    });
    expect(auditEventsFind({ since }).filter).to.deep.equal({ at: { $gte: since } });
    expect(auditEventsFind({ until }).filter).to.deep.equal({ at: { $lt: until } });
    for (const query of [{ afterId: -1 }, { since: new Date(NaN) }, { deviceId: { $ne: 1 } }, { limit: -3 }]) {
      expect(() => auditEventsFind(query as never), JSON.stringify(query)).to.throw(KakuinError).with.property('code', 'KAKUIN_E_VALIDATION');
    }
  });

  it('readFeed: seq strictly after N, ascending, default 1000, at most 10000', function () {
    expect(feedFind(0, undefined)).to.deep.equal({ filter: { _id: { $gt: 0 } }, sort: { _id: 1 }, limit: 1000 });
    expect(feedFind(17, 50_000)).to.deep.equal({ filter: { _id: { $gt: 17 } }, sort: { _id: 1 }, limit: 10_000 });
  });

  it('reserves feed seqs by $inc on one counter document', function () {
    expect(counterIncrement(1)).to.deep.equal({ $inc: { seq: 1 } });
    expect(counterIncrement(3)).to.deep.equal({ $inc: { seq: 3 } });
    expect(() => counterIncrement(0)).to.throw(KakuinError);
  });

  it('guards a certificate transition on the status read in the transaction', function () {
    expect(certificateTransitionFilter('0A1B', 'held')).to.deep.equal({ _id: '0A1B', status: 'held' });
  });

  it('revoking sets status, reason, dates and seq, and clears a stale invalidityDate when none is given', function () {
    const revokedAt = new Date('2030-03-04T05:06:07Z');
    const invalidityDate = new Date('2030-03-01T00:00:00Z');
    expect(revokeOrHoldUpdate('revoked', 'keyCompromise', revokedAt, invalidityDate, 9)).to.deep.equal({
      $set: { status: 'revoked', reason: 'keyCompromise', revokedAt, statusSeq: 9, invalidityDate },
    });
    expect(revokeOrHoldUpdate('held', 'certificateHold', revokedAt, undefined, 10)).to.deep.equal({
      $set: { status: 'held', reason: 'certificateHold', revokedAt, statusSeq: 10 }, $unset: { invalidityDate: '' },
    });
  });

  it('releasing from hold makes it good, clears the CRL-entry fields and records releasedSeq for the next delta', function () {
    expect(releaseUpdate(12)).to.deep.equal({
      $set: { status: 'good', statusSeq: 12, releasedSeq: 12 }, $unset: { reason: '', revokedAt: '', invalidityDate: '' },
    });
  });

  it('CRL filters: full, delta changed after N, delta released after N; streamed with a projection and batches', function () {
    expect(fullCrlFilter('device')).to.deep.equal({ issuerId: 'device', status: { $in: ['revoked', 'held'] } });
    expect(deltaChangedFilter('device', 5)).to.deep.equal({ issuerId: 'device', status: { $in: ['revoked', 'held'] }, statusSeq: { $gt: 5 } });
    expect(deltaReleasedFilter('device', 5)).to.deep.equal({ issuerId: 'device', status: 'good', releasedSeq: { $gt: 5 } });
    expect(Object.keys(STATUS_ROW_PROJECTION).sort()).to.deep.equal(['_id', 'invalidityDate', 'notAfter', 'reason', 'revokedAt', 'status']);
    expect(STREAM_OPTIONS.batchSize).to.be.within(100, 10_000);
    expect(STREAM_OPTIONS.projection).to.equal(STATUS_ROW_PROJECTION);
  });

  it('device status updates stamp updatedAt', function () {
    const now = new Date();
    expect(deviceStatusUpdate('revoked', now)).to.deep.equal({ $set: { status: 'revoked', updatedAt: now } });
  });

  it('legacy lookups match enabled credentials only; verifiers deduplicated', function () {
    expect(legacyFactorsFilter('c', 'u')).to.deep.equal({ commonAuthId: 'c', uniqueId: 'u', state: 'enabled' });
    expect(legacyVerifiersFilter('scrypt', ['a', 'b', 'a'])).to.deep.equal({ verifierKind: 'scrypt', verifier: { $in: ['a', 'b'] }, state: 'enabled' });
    expect(LEGACY_STATES_PIPELINE[0]).to.deep.equal({ $match: { state: 'enabled' } });
    expect(LEGACY_STATES_PIPELINE.at(-1)).to.deep.equal({ $project: { _id: 0, deviceId: '$_id', generation: 1, deviceStatus: '$device.status' } });
  });

  it('failure windows older than the previous one are dropped; due supersessions earliest first', function () {
    const start = new Date(600_000);
    expect(staleFailuresFilter(start, 60_000)).to.deep.equal({ windowStart: { $lt: new Date(540_000) } });
    const now = new Date();
    expect(dueSupersedesFind(now, undefined)).to.deep.equal({ filter: { at: { $lte: now } }, sort: { at: 1, _id: 1 }, limit: 100 });
  });

  it('putCrl replaces only an older or equal CRL: the number key sorts like the number', function () {
    const numbers = [0n, 1n, 9n, 10n, 99n, 100n, 2n ** 64n, 2n ** 159n - 1n, 123456789012345678901234567890n];
    for (const a of numbers) {
      for (const b of numbers) {
        expect(crlNumberKey(a) < crlNumberKey(b), `${a} < ${b}`).to.equal(a < b);
      }
    }
    expect(crlNumberKey(2n ** 159n - 1n)).to.have.length(49);
    expect(crlReplaceFilter('device/full', crlNumberKey(7n))).to.deep.equal({ _id: 'device/full', numberKey: { $lte: crlNumberKey(7n) } });
  });
});

describe('registry/mongodb: documents', function () {
  const roundTrip = <T>(doc: T): T => BSON.deserialize(BSON.serialize(doc as object)) as T;

  it('a certificate survives BSON as Binary and comes back as the same record', function () {
    const record: CertificateRecord = {
      serialHex: '7F00AB', issuerId: 'device', deviceId: 'd-1', profile: 'device', status: 'good', der: randomBytes(300),
      fingerprintSha256: 'a'.repeat(64), publicKeySha256: 'b'.repeat(64), notBefore: new Date(1_000), notAfter: new Date(2_000),
      createdAt: new Date(1_500),
    };
    const doc = certificateDoc(record, 4, new ObjectId());
    expect(doc.statusSeq).to.equal(4);
    expect(doc).to.not.have.property('stationId');
    const back = roundTrip(doc) as CertificateDoc;
    expect(back.der).to.be.instanceOf(Binary);
    expect(certificateFromDoc(back)).to.deep.equal(record);
    expect(certificateDoc(record, 1, new ObjectId(), 'st-1').stationId).to.equal('st-1');
  });

  it('toBuffer reads a Binary, a Buffer and a Uint8Array view', function () {
    const bytes = randomBytes(40);
    expect(toBuffer(new Binary(bytes)).equals(bytes)).to.equal(true);
    expect(toBuffer(bytes)).to.equal(bytes);
    const view = new Uint8Array(bytes.buffer, bytes.byteOffset + 4, 8);
    expect(toBuffer(view).equals(bytes.subarray(4, 12))).to.equal(true);
  });

  it('a device without identifiers stores none (so the partial unique indexes skip it)', function () {
    const doc: DeviceDoc = {
      _id: 'd', manufacturerId: 'm', serialNumber: 'SN', identifiers: { mac: 'aa' }, status: 'registered', createdAt: new Date(0),
      updatedAt: new Date(0), ord: new ObjectId(),
    };
    const device = deviceFromDoc(roundTrip(doc));
    expect(device.identifiers).to.deep.equal({ mac: 'aa' });
    expect(device).to.not.have.property('model');
    expect(device).to.not.have.property('hardwareModuleName');
  });

  it('feed entries keep every field and drop absent ones', function () {
    const entry: Omit<FeedEntry, 'seq'> = {
      at: new Date(5), kind: 'certificate', serialHex: '01', issuerId: 'device', deviceId: 'd', status: 'revoked', previousStatus: 'good',
      reason: 'keyCompromise', revokedAt: new Date(4), invalidityDate: new Date(3),
    };
    const doc = feedDoc(42, entry);
    expect(doc._id).to.equal(42);
    expect(feedEntryFromDoc(roundTrip(doc))).to.deep.equal({ seq: 42, ...entry });
    const legacy = feedDoc(43, { at: new Date(6), kind: 'legacy-credentials', deviceId: 'd', status: 'enabled', generation: 2 });
    expect(Object.keys(legacy).sort()).to.deep.equal(['_id', 'at', 'deviceId', 'generation', 'kind', 'status']);
  });

  it('CRL numbers up to 2^159 - 1 survive as decimal text', function () {
    const number = 2n ** 159n - 1n;
    const row = crlRow({
      issuerId: 'device', kind: 'delta', number, baseNumber: number - 1n, thisUpdate: new Date(1), nextUpdate: new Date(2), feedSeq: 9,
      der: Buffer.from([1, 2, 3]),
    });
    const doc = crlDoc(row);
    expect(doc._id).to.equal('device/delta');
    const back = crlFromDoc(roundTrip(doc));
    expect(back.number).to.equal(number);
    expect(back.baseNumber).to.equal(number - 1n);
    expect(back.der.equals(Buffer.from([1, 2, 3]))).to.equal(true);
  });

  it('audit events keep the given id and details exactly, even keys MongoDB field names restrict', function () {
    const doc = auditEventDoc(7, { at: 10, type: 't', actor: 'cli', device_id: null, serial_hex: 'AB', details: '{"n":1}' });
    expect(auditEventFromDoc(roundTrip(doc))).to.deep.equal({ id: 7, at: new Date(10), type: 't', actor: 'cli', serialHex: 'AB', details: { n: 1 } });
    const odd = { $where: 'x', 'a.b': [1, { 'c.d': null }], big: 2 ** 53 - 1 };
    const stored = roundTrip(auditEventDoc(8, { at: 11, type: 't', actor: 'cli', device_id: 'd', serial_hex: null, details: JSON.stringify(odd) }));
    expect(typeof stored.details).to.equal('string');
    expect(auditEventFromDoc(stored).details).to.deep.equal(odd);
    expect(auditEventFromDoc(stored)).to.not.have.property('serialHex');
  });
});

describe('registry/mongodb: driver errors', function () {
  const cases: [string, string, Record<string, number>, string][] = [
    ['manufacturers', 'manufacturers_name', { name: 1 }, 'KAKUIN_E_MANUFACTURER_EXISTS'],
    ['devices', 'devices_serial_number', { manufacturerId: 1, serialNumber: 1 }, 'KAKUIN_E_DEVICE_EXISTS'],
    ['devices', 'devices_mac', { manufacturerId: 1, 'identifiers.mac': 1 }, 'KAKUIN_E_DEVICE_EXISTS'],
    ['devices', 'devices_imei', { manufacturerId: 1, 'identifiers.imei': 1 }, 'KAKUIN_E_DEVICE_EXISTS'],
    ['devices', 'devices_hardware_id', { manufacturerId: 1, 'identifiers.hardwareId': 1 }, 'KAKUIN_E_DEVICE_EXISTS'],
    ['certificates', '_id_', { _id: 1 }, 'KAKUIN_E_SERIAL_EXISTS'],
    ['publicKeyBindings', '_id_', { _id: 1 }, 'KAKUIN_E_PUBLIC_KEY_IN_USE'],
    ['adminTokens', 'admin_tokens_name', { name: 1 }, 'KAKUIN_E_TOKEN_EXISTS'],
    ['adminTokens', 'admin_tokens_hmac', { tokenHmac: 1 }, 'KAKUIN_E_TOKEN_EXISTS'],
    ['commonAuthIds', 'common_auth_ids_name', { name: 1 }, 'KAKUIN_E_COMMON_AUTH_ID_EXISTS'],
    ['legacyCredentials', 'legacy_credentials_factors', { commonAuthId: 1, uniqueId: 1 }, 'KAKUIN_E_LEGACY_CREDENTIALS_EXIST'],
    ['legacyCredentials', 'legacy_credentials_verifier', { verifierKind: 1, verifier: 1 }, 'KAKUIN_E_LEGACY_CREDENTIALS_EXIST'],
    ['stations', 'stations_name', { manufacturerId: 1, name: 1 }, 'KAKUIN_E_STATION_EXISTS'],
    ['stations', 'stations_key_hmac', { keyHmac: 1 }, 'KAKUIN_E_STATION_EXISTS'],
  ];

  for (const [collection, indexName, keyPattern, expected] of cases) {
    it(`a duplicate key on ${collection}.${indexName} is ${expected}, with the driver error as cause`, function () {
      const driverError = duplicateKey(collection, indexName, keyPattern, { x: 'y' });
      const e = toKakuinError(driverError, { operation: 'testing' });
      expect(e.code).to.equal(expected);
      expect(e.cause).to.equal(driverError);
    });
  }

  it('says which device identifier collided', function () {
    expect(toKakuinError(duplicateKey('devices', 'devices_imei', { manufacturerId: 1, 'identifiers.imei': 1 }, {}), { operation: 't' }).message).to.match(/IMEI/);
    expect(toKakuinError(duplicateKey('devices', 'devices_mac', { manufacturerId: 1, 'identifiers.mac': 1 }, {}), { operation: 't' }).message).to.match(/MAC/);
  });

  it('falls back to the key pattern when the message names no index', function () {
    const e = new MongoServerError({ code: 11000, errmsg: 'duplicate key', keyPattern: { 'identifiers.hardwareId': 1, manufacturerId: 1 }, keyValue: {} });
    expect(conflictingIndex(e)).to.equal('devices_hardware_id');
    expect(code(toKakuinError(e, { operation: 't' }))).to.equal('KAKUIN_E_DEVICE_EXISTS');
    // `name` alone is ambiguous (manufacturers, tokens, common auth IDs): not guessed.
    const ambiguous = new MongoServerError({ code: 11000, errmsg: 'duplicate key', keyPattern: { name: 1 }, keyValue: {} });
    expect(code(toKakuinError(ambiguous, { operation: 't' }))).to.equal('KAKUIN_E_INTERNAL');
  });

  it('an unknown unique index is an internal error, not a guess', function () {
    expect(code(toKakuinError(duplicateKey('other', 'other_x', { x: 1 }, {}), { operation: 't' }))).to.equal('KAKUIN_E_INTERNAL');
  });

  it('network, selection, closed-topology, write-concern, failover and transient errors are KAKUIN_E_REGISTRY_UNAVAILABLE', function () {
    const transient = new MongoServerError({ code: 251, errmsg: 'NoSuchTransaction', errorLabels: ['TransientTransactionError'] });
    const errors: unknown[] = [
      new MongoNetworkError('connection reset'),
      new MongoServerSelectionError('Server selection timed out after 30000 ms', { error: undefined, servers: new Map() } as unknown as TopologyDescription),
      new MongoTopologyClosedError(),
      new MongoWriteConcernError({ writeConcernError: { code: 64, errmsg: 'waiting for replication timed out' } } as never),
      new MongoServerError({ code: 10107, errmsg: 'not primary' }),
      new MongoServerError({ code: 189, errmsg: 'PrimarySteppedDown' }),
      new MongoServerError({ code: 91, errmsg: 'ShutdownInProgress' }),
      new MongoServerError({ code: 50, errmsg: 'operation exceeded time limit' }),
      transient,
    ];
    for (const e of errors) {
      expect(isUnavailable(e), String(e)).to.equal(true);
      const translated = toKakuinError(e, { operation: 'reading a device' });
      expect(translated.code, String(e)).to.equal('KAKUIN_E_REGISTRY_UNAVAILABLE');
      expect(translated.message).to.match(/reading a device/);
      expect(translated.cause).to.equal(e);
    }
  });

  it('other server errors and foreign errors are KAKUIN_E_INTERNAL; a KakuinError passes through', function () {
    expect(code(toKakuinError(new MongoServerError({ code: 2, errmsg: 'BadValue' }), { operation: 't' }))).to.equal('KAKUIN_E_INTERNAL');
    expect(code(toKakuinError(new TypeError('x'), { operation: 't' }))).to.equal('KAKUIN_E_INTERNAL');
    const own = new KakuinError('KAKUIN_E_DEVICE_STATE', 'no');
    expect(toKakuinError(own, { operation: 't' })).to.equal(own);
  });

  it('redacts credentials from connection strings', function () {
    expect(redactUri('mongodb://kakuin:s3cret@db1:27017,db2/?replicaSet=rs0')).to.equal('mongodb://***@db1:27017,db2/?replicaSet=rs0');
    expect(redactUri('mongodb+srv://u:p%40ss@cluster0.example.net/kakuin')).to.equal('mongodb+srv://***@cluster0.example.net/kakuin');
    expect(redactUri('mongodb://db1:27017/')).to.equal('mongodb://db1:27017/');
  });
});

describe('registry/mongodb: write queue and close', function () {
  const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

  it('runs queued writes one at a time, in order, and a failure does not stop the next', async function () {
    const queue = new WriteQueue();
    const log: string[] = [];
    let running = 0;
    const job = (name: string, fail = false) => queue.run(async () => {
      running++;
      expect(running, name).to.equal(1);
      log.push(`start ${name}`);
      await tick();
      log.push(`end ${name}`);
      running--;
      if (fail) throw new Error(name);
      return name;
    });
    const outcomes = await Promise.allSettled([job('a'), job('b', true), job('c')]);
    expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect(log).to.deep.equal(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  it('waits for every operation in flight, including ones that fail', async function () {
    const inFlight = new InFlight();
    let done = 0;
    const slow = (ms: number, fail: boolean) => inFlight.track(new Promise<void>((resolve, reject) => setTimeout(() => {
      done++;
      if (fail) reject(new Error('x')); else resolve();
    }, ms)));
    slow(20, false).catch(() => undefined);
    slow(5, true).catch(() => undefined);
    await inFlight.settled();
    expect(done).to.equal(2);
  });
});

describe('registry/mongodb: deployment and connection', function () {
  it('transactions: replica set members and mongos yes, standalone no', function () {
    expect(deploymentSupportsTransactions({ isWritablePrimary: true, setName: 'rs0' })).to.equal(true);
    expect(deploymentSupportsTransactions({ isWritablePrimary: true, msg: 'isdbgrid' })).to.equal(true);
    expect(deploymentSupportsTransactions({ isWritablePrimary: true })).to.equal(false);
  });

  it('reads and writes with majority concern on the primary', function () {
    expect(CLIENT_DEFAULTS).to.deep.include({ readConcern: { level: 'majority' }, readPreference: 'primary', retryWrites: true });
    expect(CLIENT_DEFAULTS.writeConcern).to.deep.include({ w: 'majority' });
  });

  it('refuses a standalone server with KAKUIN_E_CONFIG, naming it', async function () {
    const fake = await startFakeMongo();
    try {
      const uri = `mongodb://127.0.0.1:${fake.port}/?directConnection=true`;
      const e = await expectKakuinError(openMongoRegistry({ uri, clientOptions: { serverSelectionTimeoutMS: 2000 } }), 'KAKUIN_E_CONFIG');
      expect(e.message).to.match(/standalone/).and.match(/replica set/);
      expect(e.message).to.include(`127.0.0.1:${fake.port}`);
      // The driver's own handshake reached the server, then the deployment check asked `hello`.
      expect(fake.commands).to.include('hello');
    } finally {
      await fake.close();
    }
  });

  it('refused credentials are KAKUIN_E_CONFIG, and the password is never repeated', async function () {
    const fake = await startFakeMongo();
    try {
      const uri = `mongodb://kakuin:TopSecret42@127.0.0.1:${fake.port}/?directConnection=true&authMechanism=SCRAM-SHA-256`;
      const e = await expectKakuinError(openMongoRegistry({ uri, clientOptions: { serverSelectionTimeoutMS: 2000 } }), 'KAKUIN_E_CONFIG');
      expect(e.message).to.match(/authentication/);
      expect(e.message).to.not.include('TopSecret42');
      expect(e.message).to.include(`***@127.0.0.1:${fake.port}`);
      expect(fake.commands).to.include('saslStart');
    } finally {
      await fake.close();
    }
  });

  it('an unreachable server is KAKUIN_E_REGISTRY_UNAVAILABLE', async function () {
    const port = await freePort();
    const e = await expectKakuinError(openMongoRegistry({
      uri: `mongodb://u:pw-not-shown@127.0.0.1:${port}/?directConnection=true`, clientOptions: { serverSelectionTimeoutMS: 300 },
    }), 'KAKUIN_E_REGISTRY_UNAVAILABLE');
    expect(e.message).to.not.include('pw-not-shown');
  });

  it('refuses something that is not a mongodb connection string', async function () {
    await expectKakuinError(openMongoRegistry({ uri: 'postgres://x' }), 'KAKUIN_E_CONFIG');
  });

  it('the change feed watches inserts and resumes after the saved token', function () {
    expect(FEED_CHANGE_PIPELINE).to.deep.equal([{ $match: { operationType: 'insert' } }]);
    expect(resumeOptions(null)).to.deep.equal({});
    const token = { _data: '8263A1' };
    expect(resumeOptions({ _id: 'gateway', resumeToken: token, updatedAt: new Date() })).to.deep.equal({ resumeAfter: token });
  });
});

describe('registry/mongodb: configuration and wiring', function () {
  const env = (extra: Record<string, string>) => ({ KAKUIN_DATA_DIR: '/tmp/kakuin-mongo-config', ...extra });

  it('storage.type mongodb takes the URI and database from the environment', function () {
    const config = loadConfig(env({ KAKUIN_STORAGE_TYPE: 'mongodb', KAKUIN_MONGODB_URI: 'mongodb://a,b/?replicaSet=rs0', KAKUIN_MONGODB_DATABASE: 'fleet' }), '/');
    expect(config.storage).to.deep.include({ type: 'mongodb', uri: 'mongodb://a,b/?replicaSet=rs0', database: 'fleet' });
    expect(loadConfig(env({}), '/').storage).to.deep.include({ type: 'sqlite', database: 'kakuin' });
  });

  it('requires a URI for mongodb, refuses other schemes and unknown types, and never echoes the URI', function () {
    const refused = (extra: Record<string, string>) => {
      try {
        loadConfig(env(extra), '/');
      } catch (e) {
        expect(code(e)).to.equal('KAKUIN_E_CONFIG');
        return (e as Error).message;
      }
      throw new Error(`accepted ${JSON.stringify(extra)}`);
    };
    expect(refused({ KAKUIN_STORAGE_TYPE: 'mongodb' })).to.match(/storage\.uri/);
    expect(refused({ KAKUIN_STORAGE_TYPE: 'postgres' })).to.match(/storage\.type/);
    const message = refused({ KAKUIN_STORAGE_TYPE: 'mongodb', KAKUIN_MONGODB_URI: 'http://user:Hunter2@db/' });
    expect(message).to.match(/storage\.uri/);
    expect(message).to.not.include('Hunter2');
    expect(refused({ KAKUIN_MONGODB_DATABASE: 'a.b' })).to.match(/storage\.database/);
  });

  it('the CRL worker opens the adapter the config names', async function () {
    const mongo = workerRegistry(loadConfig(env({ KAKUIN_STORAGE_TYPE: 'mongodb', KAKUIN_MONGODB_URI: 'mongodb://db/' }), '/'));
    expect(mongo.module).to.match(/registry\/mongodb\/worker-open\.js$/);
    expect(mongo.options).to.deep.equal({ uri: 'mongodb://db/', database: 'kakuin' });
    const sqlite = workerRegistry(loadConfig(env({}), '/'));
    expect(sqlite.module).to.match(/registry\/sqlite\/worker-open\.js$/);
    for (const spec of [mongo, sqlite]) {
      expect(existsSync(fileURLToPath(spec.module)), spec.module).to.equal(true);
      const loaded = await import(spec.module) as { openRegistry?: unknown };
      expect(loaded.openRegistry).to.be.a('function');
    }
  });
});
