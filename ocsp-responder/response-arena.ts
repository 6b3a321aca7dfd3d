/**
 * The pre-signed responses of every certificate in a few large allocations, not one object each
 * (issue 8: a responder serving 1,000,000 responses must start in seconds and stay under 1 GB).
 *
 * Records sit back to back in chunks (`chunkBytes`, 16 MiB by default), appended only:
 *
 *    0..3   record length (all of it, this prefix included)
 *    4      flags: bit 0 = dead (replaced or deleted)
 *    5..6   issuer number (one per issuer id, see #issuerNo)
 *    7      serial length in bytes; bit 7 set when the hex serial had an odd number of digits
 *    8..    serial bytes, then the cached-response entry (header + stored DER, cached-response.ts)
 *
 * The index is an open-addressing hash table in two typed arrays (location, hash): a lookup
 * hashes the serial bytes, probes linearly, and compares issuer and serial against the record.
 * A replacement appends and marks the old record dead; a chunk with nothing live left is dropped
 * at once, and when dead bytes pass `compactDeadRatio` of what is written, `compactStep` moves the
 * live records of the emptiest chunk to the tail, one chunk per step (scheduled with setImmediate,
 * so serving never waits for more than one chunk's copy). Chunks are never reused or overwritten:
 * an entry view handed out (an answer still being written to a socket) stays valid.
 */
import { HEADER_LENGTH, type SignedResponse, writeEntry } from './cached-response.js';

const EMPTY = 0xffffffff;
const TOMBSTONE = 0xfffffffe;
const PREFIX = 8;
const DEAD = 1;
const ODD = 0x80;
const MAX_SERIAL_BYTES = 0x7f;

export interface ResponseArenaOptions {
  /** Bytes per chunk, 4 KiB to 16 MiB. Default 16 MiB. */
  chunkBytes?: number;
  /** Initial hash-table slots (rounded up to a power of two). Default 1024. */
  initialSlots?: number;
  /** Compaction starts when dead bytes exceed this share of the bytes written. Default 0.25. */
  compactDeadRatio?: number;
  /** Run compaction steps by itself (setImmediate). Default true; tests call compactStep. */
  autoCompact?: boolean;
}

export interface ResponseArenaStats {
  entries: number;
  chunks: number;
  chunkBytes: number;
  /** Bytes of live records (prefix, header, stored DER). */
  liveBytes: number;
  /** Bytes of replaced or deleted records not yet dropped or compacted away. */
  deadBytes: number;
  /** Bytes held by chunks plus the index. */
  allocatedBytes: number;
  slots: number;
  compactions: number;
}

export class ResponseArena {
  readonly chunkBytes: number;
  readonly #maxChunks: number;
  readonly #compactDeadRatio: number;
  readonly #autoCompact: boolean;
  readonly #chunks: (Buffer | undefined)[] = [];
  readonly #chunkLive: number[] = [];
  readonly #chunkUsed: number[] = [];
  readonly #freeChunkNumbers: number[] = [];
  #current = -1;
  #slotLoc: Uint32Array;
  #slotHash: Uint32Array;
  #mask: number;
  #used = 0; // live + tombstones
  #entries = 0;
  #liveBytes = 0;
  #deadBytes = 0;
  #layout = 0;
  #compactions = 0;
  #compactScheduled: NodeJS.Immediate | undefined;
  #compacting = false;
  #closed = false;
  readonly #issuerNumbers = new Map<string, number>();
  readonly #issuerIds: string[] = [];
  readonly #scratch = Buffer.alloc(MAX_SERIAL_BYTES + 1);
  #keyLength = 0; // byte length | ODD of the key in #scratch

  constructor(options: ResponseArenaOptions = {}) {
    this.chunkBytes = options.chunkBytes ?? 16 * 1024 * 1024;
    if (!Number.isInteger(this.chunkBytes) || this.chunkBytes < 4096 || this.chunkBytes > 16 * 1024 * 1024) {
      throw new RangeError('chunkBytes must be an integer from 4096 to 16 MiB');
    }
    this.#maxChunks = Math.floor(0xfffffff0 / this.chunkBytes); // a location is chunk * chunkBytes + offset in a u32
    this.#compactDeadRatio = options.compactDeadRatio ?? 0.25;
    if (!(this.#compactDeadRatio > 0 && this.#compactDeadRatio < 1)) throw new RangeError('compactDeadRatio must be between 0 and 1');
    this.#autoCompact = options.autoCompact ?? true;
    let slots = 16;
    while (slots < (options.initialSlots ?? 1024)) slots *= 2;
    this.#slotLoc = new Uint32Array(slots).fill(EMPTY);
    this.#slotHash = new Uint32Array(slots);
    this.#mask = slots - 1;
  }

  get size(): number {
    return this.#entries;
  }

  /** Changes whenever the hash table is rebuilt (slot numbers then mean something else). */
  get layout(): number {
    return this.#layout;
  }

  get slotCount(): number {
    return this.#slotLoc.length;
  }

  stats(): ResponseArenaStats {
    let chunks = 0;
    for (const c of this.#chunks) if (c !== undefined) chunks++;
    return {
      entries: this.#entries, chunks, chunkBytes: this.chunkBytes, liveBytes: this.#liveBytes, deadBytes: this.#deadBytes,
      allocatedBytes: chunks * this.chunkBytes + this.#slotLoc.byteLength + this.#slotHash.byteLength, slots: this.#slotLoc.length,
      compactions: this.#compactions,
    };
  }

  /** The entry (a view: header + stored DER) of one certificate, or undefined. */
  get(issuerId: string, serialHex: string): Buffer | undefined {
    const issuerNo = this.#issuerNumbers.get(issuerId);
    if (issuerNo === undefined || !this.#loadKey(serialHex)) return undefined;
    const slot = this.#find(issuerNo, hashKey(issuerNo, this.#scratch, this.#keyLength));
    return slot < 0 ? undefined : this.#entryAt(this.#slotLoc[slot]);
  }

  /**
   * Stores (or replaces) the response of one certificate. `tailId` names the constant `certs`
   * bytes (cached-response.ts internCertsTail) when the DER ends with them: they are not stored.
   */
  set(issuerId: string, serialHex: string, response: SignedResponse, epoch: number, kind: number, tailId = 0, deferEtag = false): void {
    if (this.#closed) throw new Error('the response arena is closed');
    if (!this.#loadKey(serialHex)) throw new RangeError(`serial ${JSON.stringify(serialHex)} is not 1 to ${MAX_SERIAL_BYTES} bytes of hex`);
    const issuerNo = this.#issuerNo(issuerId);
    const keyLength = this.#keyLength;
    const serialBytes = keyLength & MAX_SERIAL_BYTES;
    const hash = hashKey(issuerNo, this.#scratch, keyLength);
    const recordLength = PREFIX + serialBytes + HEADER_LENGTH + response.der.length; // the upper bound: the tail may be left out
    const loc = this.#reserve(recordLength);
    const chunkNo = Math.floor(loc / this.chunkBytes);
    const chunk = this.#chunks[chunkNo]!;
    const at = loc - chunkNo * this.chunkBytes;
    chunk[at + 4] = 0;
    chunk.writeUInt16BE(issuerNo, at + 5);
    chunk[at + 7] = keyLength;
    this.#scratch.copy(chunk, at + PREFIX, 0, serialBytes);
    const entryLength = writeEntry(chunk, at + PREFIX + serialBytes, kind, epoch, response, tailId, deferEtag);
    const length = PREFIX + serialBytes + entryLength;
    chunk.writeUInt32BE(length, at);
    this.#chunkUsed[chunkNo] = at + length;
    this.#chunkLive[chunkNo] += length;
    this.#liveBytes += length;
    const slot = this.#find(issuerNo, hash);
    if (slot >= 0) {
      const old = this.#slotLoc[slot];
      this.#slotLoc[slot] = loc;
      this.#kill(old);
      return;
    }
    this.#insertSlot(hash, loc);
    this.#entries++;
  }

  delete(issuerId: string, serialHex: string): boolean {
    const issuerNo = this.#issuerNumbers.get(issuerId);
    if (issuerNo === undefined || !this.#loadKey(serialHex)) return false;
    const slot = this.#find(issuerNo, hashKey(issuerNo, this.#scratch, this.#keyLength));
    if (slot < 0) return false;
    this.#removeSlot(slot);
    return true;
  }

  /** Drops every response of one issuer; returns how many. */
  deleteIssuer(issuerId: string): number {
    const issuerNo = this.#issuerNumbers.get(issuerId);
    if (issuerNo === undefined) return 0;
    let n = 0;
    for (let slot = 0; slot < this.#slotLoc.length; slot++) {
      const loc = this.#slotLoc[slot];
      if (loc >= TOMBSTONE || this.#issuerOf(loc) !== issuerNo) continue;
      this.#removeSlot(slot);
      n++;
    }
    return n;
  }

  /**
   * Scans slots from `fromSlot` on, calling `visit` with the entry of each response of `issuerId`
   * (the view is only valid during the call unless copied). Stops after `maxSlots` slots or when
   * `visit` returns false; returns the next slot to scan, or -1 at the end of the table.
   */
  scan(issuerId: string, fromSlot: number, maxSlots: number, visit: (serialHex: string, entry: Buffer) => boolean | void): number {
    const issuerNo = this.#issuerNumbers.get(issuerId);
    if (issuerNo === undefined) return -1;
    const end = Math.min(this.#slotLoc.length, fromSlot + maxSlots);
    for (let slot = fromSlot; slot < end; slot++) {
      const loc = this.#slotLoc[slot];
      if (loc >= TOMBSTONE || this.#issuerOf(loc) !== issuerNo) continue;
      if (visit(this.#serialHexAt(loc), this.#entryAt(loc)) === false) return slot + 1 >= this.#slotLoc.length ? -1 : slot + 1;
    }
    return end >= this.#slotLoc.length ? -1 : end;
  }

  /** True when enough bytes are dead for compaction to be worth a step. */
  get needsCompaction(): boolean {
    const written = this.#liveBytes + this.#deadBytes;
    return this.#deadBytes > this.chunkBytes && this.#deadBytes > written * this.#compactDeadRatio;
  }

  /**
   * Moves the live records of the chunk with the most dead bytes to the tail and drops that chunk.
   * Returns true when compaction is still needed after this step.
   */
  compactStep(): boolean {
    let victim = -1;
    let mostDead = 0;
    for (let c = 0; c < this.#chunks.length; c++) {
      if (c === this.#current || this.#chunks[c] === undefined) continue;
      const dead = this.#chunkUsed[c] - this.#chunkLive[c];
      if (dead > mostDead) {
        mostDead = dead;
        victim = c;
      }
    }
    if (victim < 0) return false;
    const chunk = this.#chunks[victim]!;
    const used = this.#chunkUsed[victim];
    const base = victim * this.chunkBytes;
    this.#compacting = true;
    try {
      for (let at = 0; at < used;) {
        const length = chunk.readUInt32BE(at);
        if ((chunk[at + 4] & DEAD) === 0) this.#move(base + at, chunk, at, length);
        at += length;
      }
    } finally {
      this.#compacting = false;
    }
    // Everything in it is dead now; #kill dropped it with its last live record (or drop it if it had none).
    if (this.#chunks[victim] !== undefined) this.#dropChunk(victim);
    this.#compactions++;
    return this.needsCompaction;
  }

  /** Stops scheduled compaction; the arena keeps answering get() but takes no more set(). */
  close(): void {
    this.#closed = true;
    if (this.#compactScheduled !== undefined) clearImmediate(this.#compactScheduled);
    this.#compactScheduled = undefined;
  }

  // ---- keys and slots --------------------------------------------------------------------------

  /** Decodes the hex serial into #scratch; false when it is not hex or too long. */
  #loadKey(serialHex: string): boolean {
    if (typeof serialHex !== 'string') return false;
    const digits = serialHex.length;
    if (digits === 0 || digits > MAX_SERIAL_BYTES * 2) return false;
    const odd = (digits & 1) === 1;
    const bytes = (digits + 1) >> 1;
    const written = odd ? this.#scratch.write(`0${serialHex}`, 0, 'hex') : this.#scratch.write(serialHex, 0, 'hex');
    if (written !== bytes) return false;
    this.#keyLength = bytes | (odd ? ODD : 0);
    return true;
  }

  #issuerNo(issuerId: string): number {
    let n = this.#issuerNumbers.get(issuerId);
    if (n === undefined) {
      n = this.#issuerIds.length;
      if (n > 0xffff) throw new RangeError('too many issuers');
      this.#issuerIds.push(issuerId);
      this.#issuerNumbers.set(issuerId, n);
    }
    return n;
  }

  /** The slot holding the key in #scratch for `issuerNo`, or -1. */
  #find(issuerNo: number, hash: number): number {
    const locs = this.#slotLoc;
    const hashes = this.#slotHash;
    const mask = this.#mask;
    const keyLength = this.#keyLength;
    const serialBytes = keyLength & MAX_SERIAL_BYTES;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const loc = locs[slot];
      if (loc === EMPTY) return -1;
      if (loc === TOMBSTONE || hashes[slot] !== hash) continue;
      const chunkNo = Math.floor(loc / this.chunkBytes);
      const chunk = this.#chunks[chunkNo]!;
      const at = loc - chunkNo * this.chunkBytes;
      if (chunk[at + 7] !== keyLength || chunk.readUInt16BE(at + 5) !== issuerNo) continue;
      if (chunk.compare(this.#scratch, 0, serialBytes, at + PREFIX, at + PREFIX + serialBytes) === 0) return slot;
    }
  }

  #insertSlot(hash: number, loc: number): void {
    if ((this.#used + 1) * 2 > this.#slotLoc.length) this.#rehash(this.#entries * 4 > this.#slotLoc.length ? this.#slotLoc.length * 2 : this.#slotLoc.length);
    const locs = this.#slotLoc;
    const mask = this.#mask;
    let slot = hash & mask;
    while (locs[slot] < TOMBSTONE) slot = (slot + 1) & mask;
    if (locs[slot] === EMPTY) this.#used++;
    locs[slot] = loc;
    this.#slotHash[slot] = hash;
  }

  #removeSlot(slot: number): void {
    const loc = this.#slotLoc[slot];
    this.#slotLoc[slot] = TOMBSTONE;
    this.#entries--;
    this.#kill(loc);
  }

  /** Rebuilds the table with `slots` slots (drops tombstones); hashes are kept, so no record is read. */
  #rehash(slots: number): void {
    const oldLocs = this.#slotLoc;
    const oldHashes = this.#slotHash;
    const locs = new Uint32Array(slots).fill(EMPTY);
    const hashes = new Uint32Array(slots);
    const mask = slots - 1;
    for (let i = 0; i < oldLocs.length; i++) {
      const loc = oldLocs[i];
      if (loc >= TOMBSTONE) continue;
      let slot = oldHashes[i] & mask;
      while (locs[slot] !== EMPTY) slot = (slot + 1) & mask;
      locs[slot] = loc;
      hashes[slot] = oldHashes[i];
    }
    this.#slotLoc = locs;
    this.#slotHash = hashes;
    this.#mask = mask;
    this.#used = this.#entries;
    this.#layout++;
  }

  // ---- records and chunks ----------------------------------------------------------------------

  #issuerOf(loc: number): number {
    const chunkNo = Math.floor(loc / this.chunkBytes);
    return this.#chunks[chunkNo]!.readUInt16BE(loc - chunkNo * this.chunkBytes + 5);
  }

  #entryAt(loc: number): Buffer {
    const chunkNo = Math.floor(loc / this.chunkBytes);
    const chunk = this.#chunks[chunkNo]!;
    const at = loc - chunkNo * this.chunkBytes;
    return chunk.subarray(at + PREFIX + (chunk[at + 7] & MAX_SERIAL_BYTES), at + chunk.readUInt32BE(at));
  }

  #serialHexAt(loc: number): string {
    const chunkNo = Math.floor(loc / this.chunkBytes);
    const chunk = this.#chunks[chunkNo]!;
    const at = loc - chunkNo * this.chunkBytes;
    const keyLength = chunk[at + 7];
    const hex = chunk.toString('hex', at + PREFIX, at + PREFIX + (keyLength & MAX_SERIAL_BYTES)).toUpperCase();
    return (keyLength & ODD) !== 0 ? hex.slice(1) : hex;
  }

  /** A location with `length` free bytes at the tail (a new chunk when the current one is full). */
  #reserve(length: number): number {
    if (length > this.chunkBytes) throw new RangeError(`a response of ${length} bytes does not fit a ${this.chunkBytes}-byte chunk`);
    if (this.#current < 0 || this.#chunkUsed[this.#current] + length > this.chunkBytes) {
      const previous = this.#current;
      this.#current = this.#newChunk();
      if (previous >= 0 && this.#chunkLive[previous] === 0) this.#dropChunk(previous);
    }
    return this.#current * this.chunkBytes + this.#chunkUsed[this.#current];
  }

  #newChunk(): number {
    const n = this.#freeChunkNumbers.length > 0 ? this.#freeChunkNumbers.pop()! : this.#chunks.length;
    if (n >= this.#maxChunks) throw new RangeError('the response arena is full (4 GiB)');
    // Outside the shared pool: these live as long as the process.
    this.#chunks[n] = Buffer.allocUnsafeSlow(this.chunkBytes);
    this.#chunkLive[n] = 0;
    this.#chunkUsed[n] = 0;
    return n;
  }

  #dropChunk(chunkNo: number): void {
    this.#deadBytes -= this.#chunkUsed[chunkNo] - this.#chunkLive[chunkNo];
    this.#chunks[chunkNo] = undefined;
    this.#chunkUsed[chunkNo] = 0;
    this.#chunkLive[chunkNo] = 0;
    this.#freeChunkNumbers.push(chunkNo);
  }

  /** Marks the record at `loc` dead; drops its chunk when nothing live is left in it. */
  #kill(loc: number): void {
    const chunkNo = Math.floor(loc / this.chunkBytes);
    const chunk = this.#chunks[chunkNo]!;
    const at = loc - chunkNo * this.chunkBytes;
    const length = chunk.readUInt32BE(at);
    chunk[at + 4] |= DEAD;
    this.#chunkLive[chunkNo] -= length;
    this.#liveBytes -= length;
    this.#deadBytes += length;
    if (this.#chunkLive[chunkNo] === 0 && chunkNo !== this.#current) this.#dropChunk(chunkNo);
    else if (this.#autoCompact && !this.#compacting && this.#compactScheduled === undefined && !this.#closed && this.needsCompaction) this.#scheduleCompaction();
  }

  /** Copies one live record to the tail and points its slot there. */
  #move(loc: number, chunk: Buffer, at: number, length: number): void {
    const keyLength = chunk[at + 7];
    const issuerNo = chunk.readUInt16BE(at + 5);
    const serialBytes = keyLength & MAX_SERIAL_BYTES;
    chunk.copy(this.#scratch, 0, at + PREFIX, at + PREFIX + serialBytes);
    this.#keyLength = keyLength;
    const slot = this.#find(issuerNo, hashKey(issuerNo, this.#scratch, keyLength));
    if (slot < 0 || this.#slotLoc[slot] !== loc) throw new Error('response arena index out of step with its records');
    const to = this.#reserve(length);
    const toChunkNo = Math.floor(to / this.chunkBytes);
    const toAt = to - toChunkNo * this.chunkBytes;
    chunk.copy(this.#chunks[toChunkNo]!, toAt, at, at + length);
    this.#chunkUsed[toChunkNo] = toAt + length;
    this.#chunkLive[toChunkNo] += length;
    this.#liveBytes += length;
    this.#slotLoc[slot] = to;
    this.#kill(loc);
  }

  #scheduleCompaction(): void {
    this.#compactScheduled = setImmediate(() => {
      this.#compactScheduled = undefined;
      if (this.#closed) return;
      if (this.compactStep()) this.#scheduleCompaction();
    });
  }
}

/** The hash of a key as the index computes it (exported for the collision test). */
export function arenaKeyHash(issuerNo: number, serial: Buffer): number {
  return hashKey(issuerNo, serial, serial.length);
}

/** FNV-1a over the issuer number and the serial bytes (the key length is part of the compare, not the hash). */
function hashKey(issuerNo: number, bytes: Buffer, keyLength: number): number {
  let h = Math.imul(0x811c9dc5 ^ issuerNo, 0x01000193);
  const n = keyLength & MAX_SERIAL_BYTES;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  // The table indexes by the low bits: fold the high ones in.
  h ^= h >>> 15;
  return h >>> 0;
}
