// AccountStream: one account (`/v1/accounts/{id}/events`) or every account the key may see
// (`/v1/events`, or all on `/v1/ws`), kept as state with the gateway's merge rules. It
// reconnects with backoff and resumes from the last position (the gateway answers with
// exactly the missed events, or a `reset`), and reports connection state, upstream status
// and every change (callback and async iterator). With a token provider it replaces a token
// (JWT) before its `exp`: SSE reconnects from its resume id with a fresh token a margin
// before `exp`, a WebSocket answers the gateway's `token_expiring` with `refresh`.
import { AccountState } from "./account-state.js";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { DEFAULT_QUEUE_LIMIT, PushIterator } from "./queue.js";
import { connectEventSource, type EventSourceLike } from "./transports/event-source.js";
import { connectFetch, type FetchLike } from "./transports/fetch-sse.js";
import { refreshDelay, tokenExpiry } from "./token-expiry.js";
import { isTokenRefusal, type Connection, type ConnectRequest, type Disconnect, type TransportHandlers } from "./transports/transport.js";
import { connectWebSocket, type WebSocketLike } from "./transports/websocket.js";
import type { Envelope, Snapshot, UpstreamStatus } from "./types.js";

export type TransportName = "sse" | "fetch" | "websocket";
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export interface AccountStreamOptions {
  /** The gateway's base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** One account's public id; default: every account the key may see. */
  account?: string;
  /** `sse` (EventSource), `fetch` (SSE over fetch) or `websocket`; default `sse` where
   * EventSource exists, else `fetch`. */
  transport?: TransportName;
  /** An API key (TTGW_API_KEYS). */
  apiKey?: string;
  /** A token provider, called before every (re)connect and before a token (JWT) expires;
   * wins over `apiKey`. */
  token?: () => Promise<string> | string;
  /** SSE: how long before a token's `exp` to reconnect with a fresh one (default 30 s or 10%
   * of the token's remaining life, whichever is smaller, at least 1 s). */
  refreshMarginMs?: number;
  /** Send the gateway's cookie (`ttgw_token`) cross-origin: EventSource `withCredentials`,
   * fetch `credentials: "include"` (default false). */
  withCredentials?: boolean;
  /** Reconnect delays. */
  backoff?: BackoffOptions;
  /** The most unread changes a `changes()` iterator holds (default 10,000); beyond, the oldest
   * are dropped, counted in its `dropped`, and an `error` is emitted. */
  queueLimit?: number;
  /** Constructors and functions to use instead of globalThis's. */
  fetch?: FetchLike;
  EventSource?: EventSourceLike;
  WebSocket?: WebSocketLike;
}

/** A change of one account's state. */
export interface Change {
  account: string;
  /** `snapshot`: the first state; `reset`: replaced after a resume was impossible; `event`:
   * one event changed it. */
  kind: "snapshot" | "reset" | "event";
  /** The event, for `kind: "event"`. */
  envelope: Envelope | undefined;
  /** The account's state after the change. */
  state: Snapshot;
}

/** An upstream status event of one account (`type: "status"`, source `gateway`). */
export interface StatusChange {
  account: string;
  status: UpstreamStatus;
  envelope: Envelope;
}

/** The iterator `changes()` returns: `dropped` counts the changes lost to the queue limit. */
export interface ChangeIterator extends AsyncIterableIterator<Change> {
  readonly dropped: number;
}

export interface AccountStreamEvents {
  change: Change;
  status: StatusChange;
  /** Every event envelope, state type or not (status, ExternalTransaction, ...). */
  event: Envelope;
  connection: ConnectionState;
  error: Error;
}

function defaultTransport(): TransportName {
  return typeof (globalThis as { EventSource?: unknown }).EventSource === "function" ? "sse" : "fetch";
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not available here: pass it in the options`);
  return value;
}

export class AccountStream implements AsyncIterable<Change> {
  private readonly options: AccountStreamOptions;
  private readonly transport: TransportName;
  private readonly accounts = new Map<string, AccountState>();
  private readonly views = new Map<string, Snapshot>();
  private readonly upstreams = new Map<string, UpstreamStatus>();
  private readonly emitter = new Emitter<AccountStreamEvents>();
  private readonly iterators = new Set<PushIterator<Change>>();
  private readonly backoff: Backoff;
  private connection: Connection | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private tokenExp: number | undefined;
  private tokenRetried = false;
  private streamId: string | undefined;
  private current: ConnectionState = "connecting";
  private generation = 0;

  constructor(options: AccountStreamOptions) {
    this.options = options;
    this.transport = options.transport ?? defaultTransport();
    this.backoff = new Backoff(options.backoff);
    void this.connect();
  }

  /** The connection's state. */
  get connectionState(): ConnectionState {
    return this.current;
  }

  /** The last stream id received. A one-account SSE reconnect resumes from it; over
   * `/v1/events` it does if it is a compact one, else the resume id is built from the
   * accounts held (see `resumeId`). */
  get lastEventId(): string | undefined {
    return this.streamId;
  }

  /** When the current connection's token (JWT) expires, in epoch seconds, as read from the
   * token or from the gateway's ack of a WebSocket refresh; undefined for keys and cookies. */
  get tokenExpiresAt(): number | undefined {
    return this.tokenExp;
  }

  /** The public ids of the accounts with a state so far. */
  get accountIds(): string[] {
    return [...this.accounts.keys()];
  }

  /** An account's state (default: the stream's account, or the only one). */
  state(account?: string): Snapshot | undefined {
    const id = account ?? this.options.account ?? (this.accounts.size === 1 ? this.accountIds[0] : undefined);
    if (id === undefined) return undefined;
    const held = this.accounts.get(id);
    if (held === undefined) return undefined;
    let view = this.views.get(id);
    if (view === undefined) this.views.set(id, (view = held.toSnapshot()));
    return view;
  }

  /** Every account's state, by public id. */
  states(): Map<string, Snapshot> {
    return new Map(this.accountIds.map((id) => [id, this.state(id) as Snapshot]));
  }

  /** The last upstream status the stream reported for an account (status events only). */
  upstream(account: string): UpstreamStatus | undefined {
    return this.upstreams.get(account);
  }

  /** Listens to `change`, `status`, `event`, `connection` or `error`; returns the remover. */
  on<K extends keyof AccountStreamEvents>(name: K, listener: (value: AccountStreamEvents[K]) => void): () => void {
    return this.emitter.on(name, listener);
  }

  /** Shorthand for `on("change", listener)`. */
  onChange(listener: (change: Change) => void): () => void {
    return this.on("change", listener);
  }

  /** Every change from now on, until `close()` (or the loop breaks). */
  changes(): ChangeIterator {
    const limit = this.options.queueLimit;
    const iterator: PushIterator<Change> = new PushIterator({
      onReturn: () => this.iterators.delete(iterator),
      limit,
      onOverflow: (dropped) =>
        this.emit("error", new Error(`a changes() reader fell ${limit ?? DEFAULT_QUEUE_LIMIT} changes behind: the oldest are dropped (${dropped} so far)`)),
    });
    if (this.current === "closed") iterator.end();
    else this.iterators.add(iterator);
    return iterator;
  }

  [Symbol.asyncIterator](): ChangeIterator {
    return this.changes();
  }

  /** Drops the connection and reconnects at once, resuming from the last position. */
  reconnect(): void {
    if (this.current === "closed") return;
    this.drop();
    this.setState("reconnecting");
    void this.connect();
  }

  /** Ends the stream for good: no more callbacks; iterators finish. */
  close(): void {
    if (this.current === "closed") return;
    this.drop();
    this.setState("closed");
    for (const iterator of this.iterators) iterator.end();
    this.iterators.clear();
    this.emitter.clear();
  }

  private drop(): void {
    this.generation++;
    clearTimeout(this.timer);
    this.timer = undefined;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    this.connection?.close();
    this.connection = undefined;
  }

  private setState(next: ConnectionState): void {
    if (this.current === next) return;
    this.current = next;
    this.emit("connection", next);
  }

  private emit<K extends keyof AccountStreamEvents>(name: K, value: AccountStreamEvents[K]): void {
    this.emitter.emit(name, value, (error) => {
      if (name !== "error") this.emit("error", error instanceof Error ? error : new Error(String(error)));
    });
  }

  private async credential(): Promise<string | undefined> {
    return this.options.token !== undefined ? await this.options.token() : this.options.apiKey;
  }

  /** Each account's position (`<epoch>-<seq>`), for a WebSocket resume. */
  private positions(): Record<string, string> {
    return Object.fromEntries([...this.accounts].map(([id, state]) => [id, `${state.epoch}-${state.seq}`]));
  }

  /** The SSE resume id: over one account, the last id received; over `/v1/events`, the last
   * id received if it is a compact one (`<epoch>-~<order>...`, written over many accounts, and
   * never while snapshots are still coming), else `<epoch>-<id>.<seq>...` of the accounts held,
   * never the last id received, which may name accounts whose snapshot has not arrived yet (an
   * account left out gets a snapshot). None when no account is held, or their epochs differ
   * (then every account starts afresh). */
  private resumeId(): string | undefined {
    if (this.options.account !== undefined) return this.streamId;
    if (this.streamId !== undefined && /^[^-]+-~/.test(this.streamId)) return this.streamId;
    // Accounts held but no id yet: a stream over many accounts cut among its first snapshots
    // (they come without ids). Starting afresh is exact; an id naming every account is not
    // short.
    if (this.streamId === undefined) return undefined;
    const held = [...this.accounts.values()];
    const epoch = held[0]?.epoch;
    if (epoch === undefined || held.some((state) => state.epoch !== epoch)) return undefined;
    return `${epoch}-${held.map((state) => `${state.account}.${state.seq}`).join(".")}`;
  }

  /** Connects with a fresh credential (or `prefetched`, one just asked for). */
  private async connect(prefetched?: { credential: string | undefined }): Promise<void> {
    const generation = ++this.generation;
    let credential: string | undefined;
    try {
      credential = prefetched !== undefined ? prefetched.credential : await this.credential();
    } catch (error) {
      if (generation !== this.generation) return;
      return this.disconnected(generation, { retry: true, error: error as Error });
    }
    if (generation !== this.generation || this.current === "closed") return;
    this.tokenExp = this.options.token !== undefined ? tokenExpiry(credential) : undefined;
    this.scheduleRotation(generation);
    const request: ConnectRequest = {
      baseUrl: this.options.baseUrl,
      account: this.options.account,
      credential,
      lastEventId: this.resumeId(),
      positions: this.positions(),
      withCredentials: this.options.withCredentials ?? false,
    };
    try {
      this.connection = this.open(request, this.handlers(generation));
    } catch (error) {
      this.disconnected(generation, { retry: false, error: error instanceof Error ? error : new Error(String(error)) });
    }
  }

  /** SSE: reconnect with a fresh token a margin before this one's `exp` (a WebSocket is told
   * by the gateway instead). None for a token too short-lived to replace ahead, or one living
   * beyond what a timer can wait (2^31 ms): then the stream's end is the cue. */
  private scheduleRotation(generation: number): void {
    if (this.transport === "websocket" || this.tokenExp === undefined) return;
    const delay = refreshDelay(this.tokenExp, Date.now(), this.options.refreshMarginMs);
    if (delay === undefined || delay > 2 ** 31 - 1) return;
    this.refreshTimer = setTimeout(() => void this.rotate(generation), delay);
  }

  /** Asks for a fresh token while the stream still runs, then reopens it from the resume id:
   * the events in between are replayed, none lost, none applied twice (seq). The connection
   * state stays `open`; a failing reconnect then reports `reconnecting` as usual. */
  private async rotate(generation: number): Promise<void> {
    let credential: string | undefined;
    try {
      credential = await this.credential();
    } catch (error) {
      // The stream runs on until its token ends; its reconnect asks the provider again.
      if (generation === this.generation) this.emit("error", error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (generation !== this.generation || this.current === "closed") return;
    this.drop();
    void this.connect({ credential });
  }

  /** WebSocket: the gateway says the token expires at `expiresAt`; hand it a fresh one. A
   * provider answering with a token no newer is not sent (the socket closes with 4001 at
   * `exp` and reconnects, asking again). */
  private async refreshSocket(generation: number, expiresAt: number): Promise<void> {
    if (this.options.token === undefined) return;
    const connection = this.connection;
    let token: string;
    try {
      token = await this.options.token();
    } catch (error) {
      if (generation === this.generation) this.emit("error", error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (generation !== this.generation || this.connection !== connection) return;
    const exp = tokenExpiry(token);
    if (exp !== undefined && exp <= expiresAt) {
      this.emit("error", new Error(`the token provider gave a token expiring at ${exp}, no later than the socket's (${expiresAt}): not refreshed`));
      return;
    }
    connection?.refresh?.(token);
  }

  private open(request: ConnectRequest, handlers: TransportHandlers): Connection {
    const g = globalThis as Record<string, unknown>;
    switch (this.transport) {
      case "sse":
        return connectEventSource(request, handlers, required(this.options.EventSource ?? (g["EventSource"] as EventSourceLike), "EventSource"));
      case "websocket":
        return connectWebSocket(request, handlers, required(this.options.WebSocket ?? (g["WebSocket"] as WebSocketLike), "WebSocket"));
      case "fetch":
        return connectFetch(request, handlers, required(this.options.fetch ?? (g["fetch"] as FetchLike)?.bind(globalThis), "fetch"));
    }
  }

  private handlers(generation: number): TransportHandlers {
    const live = () => generation === this.generation;
    let delivered = false;
    // The backoff starts over only once the connection delivered data, not when it opened:
    // a gateway that accepts and drops at once is backed off from like one that refuses.
    const data = () => {
      if (!live()) return false;
      if (!delivered) {
        this.backoff.reset();
        this.tokenRetried = false;
      }
      delivered = true;
      return true;
    };
    return {
      onOpen: () => live() && this.setState("open"),
      onSnapshot: (snapshot, reset, streamId) => data() && this.onSnapshot(snapshot, reset, streamId),
      onEvent: (envelope, streamId) => data() && this.onEvent(envelope, streamId),
      onWarning: (error) => live() && this.emit("error", error),
      onTokenExpiring: (expiresAt) => live() && void this.refreshSocket(generation, expiresAt),
      onTokenRefreshed: (expiresAt) => {
        if (live()) this.tokenExp = expiresAt;
      },
      onClose: (reason) => this.disconnected(generation, reason),
    };
  }

  private disconnected(generation: number, reason: Disconnect): void {
    if (generation !== this.generation || this.current === "closed") return;
    this.connection = undefined;
    if (reason.error !== undefined) this.emit("error", reason.error);
    if (!reason.retry) return this.close();
    this.setState("reconnecting");
    this.timer = setTimeout(() => void this.connect(), this.reconnectDelay(reason));
  }

  /** The wait before a reconnect: none for the first token refusal (401 `token_*`) since data
   * last came (the provider is asked again at once); at once (once per backoff window, see
   * `Backoff.soon`) when asked to, or when the stream ended with its token (SSE at `exp`,
   * EventSource's end is otherwise silent); else the backoff. */
  private reconnectDelay(reason: Disconnect): number {
    if (this.options.token !== undefined && isTokenRefusal(reason.error) && !this.tokenRetried) {
      this.tokenRetried = true;
      return 0;
    }
    const expired = this.tokenExp !== undefined && Date.now() >= this.tokenExp * 1000 - 1000;
    return reason.immediate || expired ? this.backoff.soon() : this.backoff.next();
  }

  private onSnapshot(snapshot: Snapshot, reset: boolean, streamId: string): void {
    // Over many accounts snapshots come without ids until the last one: the id before them
    // still holds (the gateway answers it with the same start again).
    if (streamId !== "") this.streamId = streamId;
    this.accounts.set(snapshot.account, new AccountState(snapshot));
    this.changed(snapshot.account, reset ? "reset" : "snapshot", undefined);
  }

  private onEvent(envelope: Envelope, streamId: string): void {
    this.streamId = streamId;
    const held = this.accounts.get(envelope.account);
    if (held === undefined || envelope.seq <= held.seq) return;
    held.seq = envelope.seq;
    const applied = held.apply(envelope.type, envelope.data);
    this.views.delete(envelope.account);
    this.emit("event", envelope);
    if (envelope.type === "status") {
      const status = envelope.data as unknown as UpstreamStatus;
      this.upstreams.set(envelope.account, status);
      this.emit("status", { account: envelope.account, status, envelope });
    }
    if (applied === "changed") this.changed(envelope.account, "event", envelope);
  }

  private changed(account: string, kind: Change["kind"], envelope: Envelope | undefined): void {
    this.views.delete(account);
    const change: Change = { account, kind, envelope, state: this.state(account) as Snapshot };
    for (const iterator of this.iterators) iterator.push(change);
    this.emit("change", change);
  }
}
