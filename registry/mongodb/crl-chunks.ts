/**
 * CRLs larger than a MongoDB document may be (16 MiB of BSON; a full CRL at a million revoked
 * entries is ~47 MB). The DER of a large CRL goes into `crlChunks` documents of CRL_CHUNK_BYTES
 * each, under a fresh generation id; the `crls` document then names that generation instead of
 * holding the bytes. The switch is that one document's conditional replace, so a reader sees the
 * old CRL or the new one, never a mix: chunks are written before it, and the previous generation's
 * chunks are removed only after it. A reader that finds its generation already gone (a newer CRL
 * replaced it meanwhile) reads the `crls` document again.
 *
 * GridFS would do the same with two collections and a stream API; this keeps the adapter's one
 * write path (replaceOne with the higher-number filter) and needs no extra driver surface.
 */
import { randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import { COLLECTIONS, toBuffer, type CrlChunkDoc, type CrlDoc } from './documents.js';
import { isDuplicateKey } from './driver-errors.js';
import { crlReplaceFilter } from './queries.js';

/** 8 MiB per chunk: far under the 16 MiB document limit with its fields, and under the 48 MB wire message. */
export const CRL_CHUNK_BYTES = 8 << 20;
/** A CRL up to this size stays inside its `crls` document. */
export const CRL_INLINE_MAX_BYTES = CRL_CHUNK_BYTES;

/** Stores `doc` (its `der` inline or in chunks), keeping the CRL with the higher number. */
export async function putCrlDocument(db: Db, doc: CrlDoc & { der: Buffer }): Promise<void> {
  const crls = db.collection<CrlDoc>(COLLECTIONS.crls);
  const chunks = db.collection<CrlChunkDoc>(COLLECTIONS.crlChunks);
  if (doc.der.length <= CRL_INLINE_MAX_BYTES) {
    if (await replaceIfNewer(crls, doc)) await chunks.deleteMany({ crlId: doc._id });
    return;
  }
  const generation = randomUUID();
  const parts: CrlChunkDoc[] = [];
  for (let i = 0, off = 0; off < doc.der.length; i++, off += CRL_CHUNK_BYTES) {
    parts.push({ _id: `${doc._id}/${generation}/${i}`, crlId: doc._id, generation, index: i, data: doc.der.subarray(off, off + CRL_CHUNK_BYTES) });
  }
  // One at a time: each insert is one document (8 MiB), never one oversized batch.
  for (const p of parts) await chunks.insertOne(p);
  const { der, ...meta } = doc;
  let replaced = false;
  try {
    replaced = await replaceIfNewer(crls, { ...meta, chunks: { generation, count: parts.length, bytes: der.length } });
  } finally {
    // Older than the one stored (or failed): its chunks are nobody's. Stored: the previous ones are nobody's.
    await chunks.deleteMany(replaced ? { crlId: doc._id, generation: { $ne: generation } } : { crlId: doc._id, generation });
  }
}

/** True when `doc` is now the stored one; false when a CRL with a higher number was there. */
async function replaceIfNewer(crls: Collection<CrlDoc>, doc: CrlDoc): Promise<boolean> {
  try {
    await crls.replaceOne(crlReplaceFilter(doc._id, doc.numberKey), doc, { upsert: true });
    return true;
  } catch (e) {
    // The upsert found a CRL with a higher number and tried to insert beside it: keep the newer one.
    if (isDuplicateKey(e)) return false;
    throw e;
  }
}

/** The stored CRL document with its DER in `der` (reassembled from chunks), or null. */
export async function getCrlDocument(db: Db, id: string): Promise<(CrlDoc & { der: Buffer }) | null> {
  const crls = db.collection<CrlDoc>(COLLECTIONS.crls);
  const chunks = db.collection<CrlChunkDoc>(COLLECTIONS.crlChunks);
  for (let attempt = 0; attempt < 5; attempt++) {
    const doc = await crls.findOne({ _id: id });
    if (doc === null) return null;
    if (doc.chunks === undefined || doc.chunks === null) return { ...doc, der: toBuffer(doc.der!) };
    const parts = await chunks.find({ crlId: id, generation: doc.chunks.generation }).sort({ index: 1 }).toArray();
    const der = Buffer.concat(parts.map((p) => toBuffer(p.data)));
    if (parts.length === doc.chunks.count && der.length === doc.chunks.bytes) return { ...doc, der };
    // Replaced while we read: read the newer document.
  }
  throw new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', 'the CRL kept changing while it was read; retry');
}
