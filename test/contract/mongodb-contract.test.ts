/**
 * The registry contract (the same suites SQLite passes: test/contract/registry*.contract.ts) on
 * MongoDB. It needs a replica set or sharded cluster (transactions): set KAKUIN_TEST_MONGODB_URI,
 * e.g. `mongodb://127.0.0.1:27017/?replicaSet=rs0`. Each test gets a fresh database, dropped after.
 * Without the variable the run is skipped, and the output says so (no MongoDB server can be
 * installed on the CI machines: Debian has no package and mongodb-memory-server downloads one).
 */
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { COLLECTIONS } from '../../registry/mongodb/documents.js';
import { openMongoRegistry } from '../../registry/mongodb/index.js';
import { runActivityContract } from './activity.contract.js';
import { runDetectionsContract } from './detections.contract.js';
import { runJobsContract } from './jobs.contract.js';
import { runCmpContract } from './cmp.contract.js';
import { runAcmeContract } from './acme.contract.js';
import { runScepStoreContract } from './scep.contract.js';
import { runRegistryContract } from './registry.contract.js';
import { runUsersContract } from './users.contract.js';

const uri = process.env.KAKUIN_TEST_MONGODB_URI;

if (uri === undefined || uri === '') {
  describe('registry contract: mongodb', function () {
    before(function () {
      console.log('    MongoDB contract run SKIPPED: KAKUIN_TEST_MONGODB_URI is not set');
      this.skip();
    });
    it('runs the registry contract against MongoDB (set KAKUIN_TEST_MONGODB_URI to a replica set)', function () {
      // Never reached without the variable: the before hook skips the suite.
    });
  });
} else {
  // One database per run (dropped after it); between tests its collections are emptied, which is
  // far cheaper than creating every collection and index again.
  const database = `kakuin_test_${Date.now()}_${randomBytes(4).toString('hex')}`;
  const admin = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });

  after(async function () {
    try {
      await admin.db(database).dropDatabase();
    } finally {
      await admin.close();
    }
  });

  const emptied = async () => {
    const db = admin.db(database);
    for (const name of Object.values(COLLECTIONS)) {
      if (name !== COLLECTIONS.meta) await db.collection(name).deleteMany({});
    }
  };

  runRegistryContract('mongodb', async () => {
    const registry = await openMongoRegistry({ uri, database, clientOptions: { serverSelectionTimeoutMS: 5000 } });
    return {
      registry,
      cleanup: async () => {
        await registry.close();
        await emptied();
      },
    };
  });

  runJobsContract('mongodb', async () => {
    const registry = await openMongoRegistry({ uri, database, clientOptions: { serverSelectionTimeoutMS: 5000 } });
    return {
      registry, jobs: registry.jobs, approvals: registry.approvals,
      cleanup: async () => {
        await registry.close();
        await emptied();
      },
    };
  });

  runActivityContract('mongodb', async () => {
    const registry = await openMongoRegistry({ uri, database, clientOptions: { serverSelectionTimeoutMS: 5000 } });
    return {
      store: registry.activity,
      cleanup: async () => {
        await registry.close();
        await emptied();
      },
    };
  });

  runUsersContract('mongodb', async () => {
    const registry = await openMongoRegistry({ uri, database, clientOptions: { serverSelectionTimeoutMS: 5000 } });
    return {
      store: registry.users,
      registry,
      cleanup: async () => {
        await registry.close();
        await emptied();
      },
    };
  });

  runDetectionsContract('mongodb', async () => {
    const registry = await openMongoRegistry({ uri, database, clientOptions: { serverSelectionTimeoutMS: 5000 } });
    return {
      store: registry.detections,
      cleanup: async () => {
        await registry.close();
        await emptied();
      },
    };
  });

  runCmpContract('mongodb', async () => {
    const registry = await openMongoRegistry({ uri, database, clientOptions: { serverSelectionTimeoutMS: 5000 } });
    return {
      store: registry.cmp,
      cleanup: async () => {
        await registry.close();
        await emptied();
      },
    };
  });

  runScepStoreContract('mongodb', async () => {
    const registry = await openMongoRegistry({ uri, database, clientOptions: { serverSelectionTimeoutMS: 5000 } });
    return {
      store: registry.scep,
      cleanup: async () => {
        await registry.close();
        await emptied();
      },
    };
  });

  runAcmeContract('mongodb', async () => {
    const registry = await openMongoRegistry({ uri, database, clientOptions: { serverSelectionTimeoutMS: 5000 } });
    return {
      store: registry.acme,
      cleanup: async () => {
        await registry.close();
        await emptied();
      },
    };
  });
}
