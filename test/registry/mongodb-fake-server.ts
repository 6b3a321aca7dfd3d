/**
 * A TCP server that speaks just enough of the MongoDB wire protocol (OP_QUERY and OP_MSG) to
 * answer every command with one fixed reply: `hello` of a standalone mongod. The real driver
 * connects to it, so the deployment check and the error translation of MongoRegistry's opening are
 * tested against the driver's own handshake, without a MongoDB server (none can be installed here).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { BSON } from 'mongodb';

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;

export interface FakeMongo {
  port: number;
  /** Command names received, in order (the first key of each command document). */
  commands: string[];
  close(): Promise<void>;
}

/** The `hello` reply of a standalone server: no setName, no `msg: 'isdbgrid'`. */
export function standaloneHello(): Record<string, unknown> {
  return {
    helloOk: true, ismaster: true, isWritablePrimary: true, maxBsonObjectSize: 16 * 1024 * 1024, maxMessageSizeBytes: 48_000_000,
    maxWriteBatchSize: 100_000, localTime: new Date(), logicalSessionTimeoutMinutes: 30, connectionId: 1, minWireVersion: 0,
    maxWireVersion: 21, readOnly: false, ok: 1,
  };
}

/** Every command gets `hello` of a standalone server, except authentication, which fails (code 18). */
export function standaloneWithoutUsers(command: string): Record<string, unknown> {
  if (command === 'saslStart' || command === 'authenticate') {
    return { ok: 0, code: 18, codeName: 'AuthenticationFailed', errmsg: 'Authentication failed.' };
  }
  return standaloneHello();
}

export async function startFakeMongo(reply: (command: string) => Record<string, unknown> = standaloneWithoutUsers): Promise<FakeMongo> {
  const commands: string[] = [];
  const sockets = new Set<Socket>();
  let nextId = 1;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 16 && pending.length >= pending.readInt32LE(0)) {
        const length = pending.readInt32LE(0);
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        const requestId = message.readInt32LE(4);
        const opCode = message.readInt32LE(12);
        if (opCode === OP_QUERY) {
          // flags, fullCollectionName (cstring), numberToSkip, numberToReturn, query
          let at = 20;
          while (message[at] !== 0) at += 1;
          at += 1 + 8;
          const command = Object.keys(BSON.deserialize(message.subarray(at)))[0] ?? '';
          commands.push(command);
          const body = Buffer.from(BSON.serialize(reply(command)));
          const head = Buffer.alloc(36);
          head.writeInt32LE(36 + body.length, 0);
          head.writeInt32LE(nextId++, 4);
          head.writeInt32LE(requestId, 8);
          head.writeInt32LE(OP_REPLY, 12);
          head.writeInt32LE(0, 16); // responseFlags
          head.writeBigInt64LE(0n, 20); // cursorID
          head.writeInt32LE(0, 28); // startingFrom
          head.writeInt32LE(1, 32); // numberReturned
          socket.write(Buffer.concat([head, body]));
        } else if (opCode === OP_MSG) {
          // flagBits, then section kind 0 (the command document)
          const command = message[20] === 0 ? Object.keys(BSON.deserialize(message.subarray(21, 21 + message.readInt32LE(21))))[0] ?? '' : '';
          commands.push(command);
          const body = Buffer.from(BSON.serialize(reply(command)));
          const head = Buffer.alloc(21);
          head.writeInt32LE(21 + body.length, 0);
          head.writeInt32LE(nextId++, 4);
          head.writeInt32LE(requestId, 8);
          head.writeInt32LE(OP_MSG, 12);
          head.writeUInt32LE(0, 16);
          head.writeUInt8(0, 20);
          socket.write(Buffer.concat([head, body]));
        } else {
          socket.destroy();
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    commands,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
