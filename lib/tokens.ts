import { randomUUID } from 'node:crypto';
import { WECHAT_RESERVE_MS } from './clients/retry';
import {
  type FetchedCredential,
  fetchJsapiTicket,
  fetchStableToken,
  InvalidAccessTokenError,
} from './clients/wechat-api';
import { timeLeft } from './deadline';
import { ServiceUnavailableError, UpstreamError } from './errors';
import { logger } from './logger';
import type { CredentialKind, StoredCredential } from './repositories/token-repository';
import * as store from './repositories/token-repository';

/**
 * The token broker: one access_token per AppID (and one jsapi_ticket per official account) shared by every
 * Lambda through the users table, so that no two containers refresh and invalidate each other (the 40001
 * storm). A container keeps what it read until the refresh time (concurrent callers in it share one read); the
 * store is refreshed ahead of expiry by one caller at a time (a conditional-write lease with an end, so a crashed
 * holder blocks nobody for long) while the others keep using the still-valid value, or, when there is none (cold
 * store, expired), wait briefly (bounded by the invocation's deadline) and read again. Tokens come from
 * getStableAccessToken in normal mode only; force_refresh is never used. Values are never logged.
 */

/** Refresh this long before WeChat's expiry (stable_token rolls the token in its last 5 minutes). */
export const REFRESH_AHEAD_MS = 5 * 60_000;
/** A value is not handed out in its last this-many milliseconds (it could expire during the call using it). */
export const EXPIRY_MARGIN_MS = 30_000;
/** How long a refresh lease lasts: a stable_token call with its one retry ends well within it. */
export const LEASE_MS = 10_000;
/** A waiting caller reads the store again after this long at first, then backs off (with jitter) up to POLL_MAX_MS. */
export const POLL_MS = 100;
export const POLL_MAX_MS = 400;
/** The longest a caller waits for another's refresh (less when the invocation's deadline is nearer). */
export const MAX_WAIT_MS = 8_000;

/** Where a credential comes from: which one it is, and how to fetch it from WeChat. */
export interface CredentialSource {
  kind: CredentialKind;
  appId: string;
  fetch(): Promise<FetchedCredential>;
}

/** One AppID's credentials for getStableAccessToken. */
export interface WechatApp {
  appId: string;
  secret: string;
  /** WECHAT_API_BASE. */
  apiBase: string;
}

interface Held {
  value: string;
  refreshAt: number;
  expiresAt: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class TokenBroker {
  /** What this container last read or stored, per credential. */
  private readonly held = new Map<string, Held>();
  /** A read of the store already under way in this container, per credential (concurrent callers share it). */
  private readonly reading = new Map<string, Promise<string>>();

  constructor(
    private readonly table: string,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The current value of `source`: this container's copy until its refresh time, else the store's; refreshes it
   * (one caller across all containers) when the store's is due. Throws ServiceUnavailableError when no value can
   * be had before the deadline, and what `source.fetch` throws for the caller that refreshes.
   */
  async get(source: CredentialSource): Promise<string> {
    const name = this.name(source);
    const mine = this.held.get(name);
    if (mine && this.now() < mine.refreshAt) return mine.value;
    let reading = this.reading.get(name);
    if (!reading) {
      reading = this.fromStore(source, undefined).finally(() => this.reading.delete(name));
      this.reading.set(name, reading);
    }
    return reading;
  }

  /**
   * WeChat refused `bad` (40001/42001): forgets it here, reads the store once and returns its value if it is
   * another (a container refreshed meanwhile); if the store holds the same bad value, refreshes once. Never
   * loops: the caller uses the answer once. Throws like get().
   */
  async replace(source: CredentialSource, bad: string): Promise<string> {
    this.held.delete(this.name(source));
    return this.fromStore(source, bad);
  }

  private name(source: CredentialSource): string {
    return `${source.kind}#${source.appId}`;
  }

  private usable(
    stored: StoredCredential | undefined,
    bad: string | undefined,
  ): stored is StoredCredential & {
    value: string;
    refreshAt: number;
    expiresAt: number;
  } {
    return (
      stored?.value !== undefined &&
      stored.value !== bad &&
      typeof stored.expiresAt === 'number' &&
      this.now() < stored.expiresAt - EXPIRY_MARGIN_MS
    );
  }

  private async fromStore(source: CredentialSource, bad: string | undefined): Promise<string> {
    const waitUntil = this.now() + Math.min(MAX_WAIT_MS, timeLeft() - WECHAT_RESERVE_MS);
    for (let round = 0; ; round++) {
      const stored = await store.readCredential(this.table, source.kind, source.appId);
      // A live lease seen in the read is not contended for: someone is refreshing.
      const leased = (stored?.leaseUntil ?? 0) >= this.now();
      if (this.usable(stored, bad)) {
        if (this.now() < stored.refreshAt) {
          this.held.set(this.name(source), stored);
          return stored.value;
        }
        // Due for its ahead-of-expiry refresh but still valid: one caller refreshes, everyone else uses it.
        const refreshed = leased ? undefined : await this.refreshUnderLease(source, stored.rev);
        return refreshed?.value ?? stored.value;
      }
      // Nothing usable (cold store, expired, or the value WeChat just refused): refresh, or wait for whoever does.
      const refreshed = leased ? undefined : await this.refreshUnderLease(source, stored?.rev);
      if (refreshed?.value !== undefined) return refreshed.value;
      if (refreshed?.error) throw refreshed.error;
      const pause = Math.min(POLL_MAX_MS, POLL_MS * 1.5 ** round) * (0.5 + Math.random() / 2);
      if (this.now() + pause > waitUntil) {
        throw new ServiceUnavailableError(
          undefined,
          'WECHAT_UNAVAILABLE',
          `${source.kind}: refresh still running`,
        );
      }
      await sleep(pause);
    }
  }

  /**
   * Takes the lease (conditioned on the revision read) and refreshes: the new value, or the fetch's error (the
   * lease given back); undefined when someone else holds the lease or refreshed since `seenRev`.
   */
  private async refreshUnderLease(
    source: CredentialSource,
    seenRev: number | undefined,
  ): Promise<{ value?: string; error?: unknown } | undefined> {
    const owner = randomUUID();
    const now = this.now();
    const leased = await store.acquireLease(this.table, source.kind, source.appId, {
      owner,
      seenRev,
      now,
      until: now + LEASE_MS,
    });
    if (!leased) return undefined;
    let fetched: FetchedCredential;
    try {
      fetched = await source.fetch();
    } catch (error) {
      logger.warn('credential refresh failed', {
        kind: source.kind,
        appId: source.appId,
        error: (error as Error).name,
      });
      await store.releaseLease(this.table, source.kind, source.appId, owner);
      return { error };
    }
    const fetchedAt = this.now();
    const lifetime = fetched.expiresInSeconds * 1000;
    const held: Held = {
      value: fetched.value,
      // Ahead of expiry, but never sooner than half the lifetime (a token handed out in WeChat's last 5 minutes).
      refreshAt: fetchedAt + Math.max(lifetime - REFRESH_AHEAD_MS, lifetime / 2),
      expiresAt: fetchedAt + lifetime,
    };
    const stored = await store.storeCredential(this.table, source.kind, source.appId, { owner, ...held });
    if (!stored)
      logger.warn('credential refresh outlived its lease', { kind: source.kind, appId: source.appId });
    this.held.set(this.name(source), held);
    logger.info('credential refreshed', {
      kind: source.kind,
      appId: source.appId,
      expiresIn: fetched.expiresInSeconds,
    });
    return { value: fetched.value };
  }

  /** Test hook: forget this container's copies (a cold start). */
  forget(): void {
    this.held.clear();
  }
}

/** The access_token source of an AppID: getStableAccessToken in normal mode. */
export function accessTokenSource(app: WechatApp): CredentialSource {
  return {
    kind: 'access_token',
    appId: app.appId,
    fetch: () => fetchStableToken(app.apiBase, app.appId, app.secret),
  };
}

/**
 * Runs `use` with the AppID's shared access_token. When WeChat refuses the token (`use` throws
 * InvalidAccessTokenError), the broker re-reads the store once and refreshes once if it still holds that token,
 * and `use` runs once more; a second refusal is an UpstreamError WECHAT_TOKEN_INVALID (502), never a loop.
 */
export async function withAccessToken<T>(
  broker: TokenBroker,
  app: WechatApp,
  use: (accessToken: string) => Promise<T>,
): Promise<T> {
  const source = accessTokenSource(app);
  const token = await broker.get(source);
  try {
    return await use(token);
  } catch (error) {
    if (!(error instanceof InvalidAccessTokenError)) throw error;
    logger.warn('access_token refused by WeChat; reading the store again', {
      appId: app.appId,
      errcode: error.errcode,
    });
  }
  const next = await broker.replace(source, token);
  try {
    return await use(next);
  } catch (error) {
    if (!(error instanceof InvalidAccessTokenError)) throw error;
    throw new UpstreamError(
      undefined,
      'WECHAT_TOKEN_INVALID',
      `access_token refused twice (errcode ${error.errcode})`,
    );
  }
}

/** The official account's jsapi_ticket through the broker (getticket with its shared access_token). */
export function jsapiTicket(broker: TokenBroker, app: WechatApp): Promise<string> {
  return broker.get({
    kind: 'jsapi_ticket',
    appId: app.appId,
    fetch: () => withAccessToken(broker, app, (token) => fetchJsapiTicket(app.apiBase, token)),
  });
}

const brokers = new Map<string, TokenBroker>();

/** This container's broker for a table (module singleton per table). */
export function tokenBroker(table: string): TokenBroker {
  let broker = brokers.get(table);
  if (!broker) {
    broker = new TokenBroker(table);
    brokers.set(table, broker);
  }
  return broker;
}
