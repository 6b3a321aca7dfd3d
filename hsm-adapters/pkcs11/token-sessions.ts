/**
 * The sessions kakuin holds on one token: a small pool, each session doing one operation at a time
 * (PKCS#11 §5.6: an operation is per session), so that signatures run in parallel on libuv's
 * thread pool (C_SignAsync) without blocking the event loop.
 *
 * A lost session (the module was reset, someone called C_CloseAllSessions, the login state is gone)
 * is noticed by the operation that used it: the pool is dropped as a whole, a fresh session is
 * opened and logged in, and that operation is retried once. `reopens` counts those recoveries.
 */
import { KakuinError } from '../../errors/index.js';
import type { LoadedModule } from './module.js';

type Handle = Buffer;

interface PooledSession {
  readonly handle: Handle;
  /** The pool epoch the session was opened in; an older one is closed instead of returned. */
  readonly epoch: number;
}

export class TokenSessions {
  #idle: PooledSession[] = [];
  #waiters: ((session: PooledSession) => void)[] = [];
  #open = 0;
  #epoch = 0;
  #closed = false;
  #reopens = 0;

  constructor(
    private readonly module: LoadedModule,
    readonly slot: Handle,
    readonly tokenLabel: string,
    private readonly pin: string | undefined,
    private readonly size: number,
  ) {}

  get reopens(): number {
    return this.#reopens;
  }

  /**
   * Runs `operation` on a session of its own. A session-loss error (see `isSessionLost`) drops the
   * pool, and the operation is run once more on a freshly opened and logged-in session.
   */
  async use<T>(operation: (session: Handle) => Promise<T> | T): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const session = await this.#acquire();
      let broken = false;
      try {
        return await operation(session.handle);
      } catch (error) {
        // Any error of the module's own closes this session rather than trusting its state again:
        // the next operation gets a freshly opened, logged-in one.
        broken = error instanceof this.module.lib.NativeError;
        const lost = this.isSessionLost(error);
        if (!lost || attempt > 0) throw error;
        if (session.epoch === this.#epoch) {
          this.#reopens += 1;
          this.#drop();
        }
      } finally {
        this.#release(session, broken);
      }
    }
  }

  isSessionLost(error: unknown): boolean {
    const { lib } = this.module;
    if (!(error instanceof lib.Pkcs11Error)) return false;
    return [
      lib.CKR_SESSION_HANDLE_INVALID, lib.CKR_SESSION_CLOSED, lib.CKR_USER_NOT_LOGGED_IN,
      lib.CKR_DEVICE_REMOVED, lib.CKR_TOKEN_NOT_PRESENT, lib.CKR_DEVICE_ERROR, lib.CKR_OBJECT_HANDLE_INVALID,
      lib.CKR_KEY_HANDLE_INVALID,
    ].includes(error.code);
  }

  /** Opens (and logs in) the first session now, so a wrong PIN is reported when the store opens a token. */
  async warmUp(): Promise<void> {
    await this.use(() => undefined);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#idle) this.#closeSession(s);
    this.#idle = [];
  }

  async #acquire(): Promise<PooledSession> {
    if (this.#closed) throw new KakuinError('KAKUIN_E_INTERNAL', `the PKCS#11 sessions of token "${this.tokenLabel}" are closed`);
    const idle = this.#idle.pop();
    if (idle) return idle;
    if (this.#open < this.size) {
      this.#open += 1;
      try {
        return this.#openSession();
      } catch (error) {
        this.#open -= 1;
        throw error;
      }
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #release(session: PooledSession, broken: boolean): void {
    if (broken || session.epoch !== this.#epoch || this.#closed) {
      this.#closeSession(session);
      this.#open -= 1;
      const waiter = this.#waiters.shift();
      if (waiter && !this.#closed) {
        // The waiter gets a fresh session in place of the one closed.
        this.#open += 1;
        try {
          waiter(this.#openSession());
        } catch {
          this.#open -= 1;
          this.#waiters.unshift(waiter);
        }
      }
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter(session);
    else this.#idle.push(session);
  }

  /** Forget every idle session of the current epoch; sessions in use are closed when they come back. */
  #drop(): void {
    this.#epoch += 1;
    for (const s of this.#idle) {
      this.#closeSession(s);
      this.#open -= 1;
    }
    this.#idle = [];
  }

  #openSession(): PooledSession {
    const { pkcs11, lib } = this.module;
    let handle: Handle;
    try {
      handle = pkcs11.C_OpenSession(this.slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION);
    } catch (cause) {
      throw new KakuinError('KAKUIN_E_PKCS11_MODULE', `cannot open a session on token "${this.tokenLabel}": ${String(cause)}`, { cause });
    }
    if (this.pin !== undefined) {
      try {
        // The login state belongs to the application, not the session (PKCS#11 §5.6): a second
        // session of a logged-in application reports CKR_USER_ALREADY_LOGGED_IN, which is fine.
        pkcs11.C_Login(handle, lib.CKU_USER, this.pin);
      } catch (cause) {
        if (!(cause instanceof lib.Pkcs11Error && cause.code === lib.CKR_USER_ALREADY_LOGGED_IN)) {
          try { pkcs11.C_CloseSession(handle); } catch { /* the login error is the one to report */ }
          throw loginError(this.tokenLabel, cause, this.module);
        }
      }
    }
    return { handle, epoch: this.#epoch };
  }

  #closeSession(session: PooledSession): void {
    try { this.module.pkcs11.C_CloseSession(session.handle); } catch { /* already gone */ }
  }
}

function loginError(token: string, cause: unknown, { lib }: LoadedModule): KakuinError {
  if (cause instanceof lib.Pkcs11Error) {
    if (cause.code === lib.CKR_PIN_INCORRECT || cause.code === lib.CKR_PIN_LEN_RANGE) {
      return new KakuinError('KAKUIN_E_PKCS11_PIN', `the PIN for token "${token}" is wrong (check KAKUIN_PKCS11_PIN or the PIN file)`, { cause });
    }
    if (cause.code === lib.CKR_PIN_LOCKED) {
      return new KakuinError('KAKUIN_E_PKCS11_PIN', `the user PIN of token "${token}" is locked`, { cause });
    }
  }
  return new KakuinError('KAKUIN_E_PKCS11_MODULE', `login to token "${token}" failed: ${String(cause)}`, { cause });
}
