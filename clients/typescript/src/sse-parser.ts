// A Server-Sent Events parser (the WHATWG event stream format) for the fetch transport: fed
// text chunks as they arrive, it calls back once per dispatched event with its type, data and
// the last event id, exactly as EventSource would, and (unlike EventSource) once per comment
// line (the gateway's `: token expired; ...` before it ends a stream).

/** One dispatched event. */
export interface SseMessage {
  /** `event:` (default `message`). */
  event: string;
  data: string;
  /** The last `id:` seen so far on this stream (it carries over to later events). */
  lastEventId: string;
}

export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private lastEventId = "";
  private first = true;

  constructor(
    private readonly onMessage: (message: SseMessage) => void,
    private readonly onComment: (text: string) => void = () => {},
  ) {}

  /** Feeds a decoded chunk; complete lines are parsed now, a partial one is kept. */
  push(chunk: string): void {
    let text = this.buffer + chunk;
    if (this.first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.first = false;
    }
    let start = 0;
    for (;;) {
      const end = nextLineEnd(text, start);
      // A \r at the very end may be half of \r\n: wait for the next chunk to tell.
      if (end === -1 || (text[end] === "\r" && end + 1 === text.length)) break;
      this.line(text.slice(start, end));
      start = end + (text[end] === "\r" && text[end + 1] === "\n" ? 2 : 1);
    }
    this.buffer = text.slice(start);
  }

  private line(line: string): void {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return this.onComment(line.slice(1).trimStart());
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
  }

  private dispatch(): void {
    if (this.data.length === 0) {
      this.event = "";
      return;
    }
    const message = { event: this.event || "message", data: this.data.join("\n"), lastEventId: this.lastEventId };
    this.data = [];
    this.event = "";
    this.onMessage(message);
  }
}

function nextLineEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13) return i;
  }
  return -1;
}
