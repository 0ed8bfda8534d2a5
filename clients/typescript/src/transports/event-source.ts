// Server-Sent Events over the browser's EventSource. EventSource cannot send headers, so the
// key goes as `?access_token=` and the resume position as `?last_event_id=` (the gateway
// reads both), or no key at all and the gateway's HttpOnly cookie (`withCredentials`).
// Reconnects are AccountStream's (with its backoff and a fresh token), not EventSource's own.
import { dispatchSse, EVENT_NAMES } from "./messages.js";
import { eventsUrl, type Connection, type ConnectRequest, type TransportHandlers } from "./transport.js";

/** The part of the EventSource constructor this transport uses. */
export type EventSourceLike = new (url: string, init?: { withCredentials?: boolean }) => {
  addEventListener(type: string, listener: (event: MessageEvent<string>) => void): void;
  onopen: ((event: Event) => void) | null;
  onerror: ((event: Event) => void) | null;
  close(): void;
};

export function connectEventSource(
  request: ConnectRequest,
  handlers: TransportHandlers,
  EventSourceImpl: EventSourceLike,
): Connection {
  const url = eventsUrl(request, { access_token: request.credential, last_event_id: request.lastEventId });
  const source = request.withCredentials ? new EventSourceImpl(url.toString(), { withCredentials: true }) : new EventSourceImpl(url.toString());
  let ended = false;
  const listener = (event: MessageEvent<string>) => {
    if (!ended) dispatchSse(handlers, event.type, event.data, event.lastEventId);
  };
  for (const name of ["snapshot", "reset", ...EVENT_NAMES]) source.addEventListener(name, listener);
  source.onopen = () => {
    if (!ended) handlers.onOpen();
  };
  source.onerror = () => {
    if (ended) return;
    ended = true;
    source.close();
    handlers.onClose({ retry: true, error: new Error("the event stream failed or ended") });
  };
  return {
    close() {
      ended = true;
      source.close();
    },
  };
}
