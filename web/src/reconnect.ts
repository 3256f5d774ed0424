// Reconnection policy of the room page: back-off and give-up (pure, unit-testable), the watch on
// the peer connection's state, and the "Reconnecting…" / "Rejoin" banner.
//
// The server has no session resumption: a rejoin is a fresh join (new socket, new channel, new
// WebRTCEndpoint, new endpoint id) with the same name and the same local MediaStreamTracks. The
// Room (room.ts) does the tear-down and the rejoin; this module decides when and shows it.

/** First retry after 0.5 s, then doubling up to 5 s between attempts. */
export const RECONNECT_INITIAL_DELAY_MS = 500;
export const RECONNECT_MAX_DELAY_MS = 5000;
/** Attempts stop (and "Rejoin" is offered) one minute after the connection was lost. */
export const RECONNECT_GIVE_UP_MS = 60_000;
/** One attempt (socket, join, `connected`) may take this long before it counts as failed. */
export const RECONNECT_ATTEMPT_TIMEOUT_MS = 10_000;
/** A session that stayed connected this long resets the back-off (and the give-up clock). */
export const RECONNECT_STABLE_MS = 10_000;
/** A peer connection "disconnected" for this long counts as lost (ICE usually recovers sooner). */
export const PEER_DISCONNECTED_GRACE_MS = 5000;
/** A peer connection that never reaches "connected" within this time counts as lost. */
export const PEER_CONNECT_TIMEOUT_MS = 20_000;

/** Delay before attempt `attempt` (1-based): initial · 2^(attempt-1), capped. */
export function backoffDelay(attempt: number, initialMs = RECONNECT_INITIAL_DELAY_MS, maxMs = RECONNECT_MAX_DELAY_MS): number {
  const n = Math.max(1, Math.floor(attempt));
  return Math.min(maxMs, initialMs * 2 ** Math.min(n - 1, 30));
}

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  giveUpAfterMs?: number;
}

/**
 * Back-off with a deadline. `begin(now)` starts the clock at the first loss (later calls keep
 * it), `next(now)` gives the delay before the next attempt or null once the deadline passed,
 * `reset()` forgets everything (after a stable session or a manual rejoin).
 */
export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly giveUpAfterMs: number;
  private lostAt: number | null = null;
  private attempts = 0;

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? RECONNECT_INITIAL_DELAY_MS;
    this.maxMs = opts.maxMs ?? RECONNECT_MAX_DELAY_MS;
    this.giveUpAfterMs = opts.giveUpAfterMs ?? RECONNECT_GIVE_UP_MS;
  }

  begin(now: number): void {
    if (this.lostAt === null) this.lostAt = now;
  }

  /** Attempts scheduled since the clock started. */
  get attempt(): number {
    return this.attempts;
  }

  /** When the clock started (the first loss), or null. */
  get since(): number | null {
    return this.lostAt;
  }

  next(now: number): number | null {
    if (this.lostAt === null) this.lostAt = now;
    const delay = backoffDelay(this.attempts + 1, this.initialMs, this.maxMs);
    if (now + delay - this.lostAt > this.giveUpAfterMs) return null;
    this.attempts += 1;
    return delay;
  }

  reset(): void {
    this.lostAt = null;
    this.attempts = 0;
  }
}

/**
 * Join refusals worth retrying while reconnecting (the room may still hold our old endpoint, or
 * be closing after a restart). A refusal on the very first join is never retried.
 */
export function isRetriableJoinRefusal(reason: string): boolean {
  return reason !== "unauthorized" && reason !== "invalid room id" && reason !== "invalid_room";
}

/**
 * Watches one peer connection's `connectionState` (fed once a second): returns a reason when
 * the connection is to be considered lost, null while it is fine or may still recover.
 */
export class PeerWatch {
  private state: string | null = null;
  private since = 0;
  private everConnected = false;

  reset(): void {
    this.state = null;
    this.since = 0;
    this.everConnected = false;
  }

  observe(state: RTCPeerConnectionState | null, now: number): string | null {
    if (state === null) {
      // No peer connection (nothing negotiated yet, e.g. alone and receive-only): nothing to watch.
      this.state = null;
      return null;
    }
    if (state !== this.state) {
      this.state = state;
      this.since = now;
    }
    const age = now - this.since;
    switch (state) {
      case "connected":
        this.everConnected = true;
        return null;
      case "failed":
        return "the media connection failed";
      case "closed":
        return "the media connection was closed";
      case "disconnected":
        return age >= PEER_DISCONNECTED_GRACE_MS ? "the media connection was interrupted" : null;
      default:
        // "new" / "connecting": the first connection, or an ICE restart of a negotiation round.
        return age >= PEER_CONNECT_TIMEOUT_MS
          ? this.everConnected
            ? "the media connection did not recover"
            : "the media connection could not be established"
          : null;
    }
  }
}

// ----------------------------------------------------------------------------------------------
// Banner (created by this module: room.html belongs to the page layout, not to reconnection)

let bannerEl: HTMLElement | null = null;

function banner(): HTMLElement {
  if (bannerEl && bannerEl.isConnected) return bannerEl;
  const b = document.createElement("div");
  b.id = "reconnect-banner";
  b.className = "banner reconnect-banner";
  b.setAttribute("role", "status");
  b.setAttribute("aria-live", "polite");
  b.hidden = true;
  const text = document.createElement("span");
  text.className = "reconnect-text";
  const button = document.createElement("button");
  button.type = "button";
  button.id = "reconnect-rejoin-button";
  button.className = "reconnect-rejoin";
  button.textContent = "Rejoin";
  button.hidden = true;
  b.append(text, button);
  const anchor = document.getElementById("error-banner");
  const room = document.getElementById("room");
  if (anchor?.parentElement) anchor.parentElement.insertBefore(b, anchor);
  else if (room) room.prepend(b);
  else document.body.prepend(b);
  bannerEl = b;
  return b;
}

function parts(): { b: HTMLElement; text: HTMLElement; button: HTMLButtonElement } {
  const b = banner();
  return {
    b,
    text: b.querySelector(".reconnect-text") as HTMLElement,
    button: b.querySelector(".reconnect-rejoin") as HTMLButtonElement,
  };
}

/** "Reconnecting…" with the reason and when the next attempt starts. */
export function showReconnecting(reason: string, attempt: number, delayMs: number): void {
  const { b, text, button } = parts();
  b.dataset.state = "reconnecting";
  const when = delayMs >= 1000 ? ` (attempt ${attempt} in ${Math.round(delayMs / 1000)} s)` : ` (attempt ${attempt})`;
  text.textContent = `Connection lost: ${reason}. Reconnecting…${when}`;
  button.hidden = true;
  button.onclick = null;
  b.hidden = false;
}

/** The give-up message with a "Rejoin" button. */
export function showGaveUp(message: string, onRejoin: () => void): void {
  const { b, text, button } = parts();
  b.dataset.state = "gave-up";
  b.setAttribute("role", "alert");
  text.textContent = message;
  button.hidden = false;
  button.onclick = () => onRejoin();
  b.hidden = false;
}

export function hideReconnectBanner(): void {
  if (!bannerEl) return;
  bannerEl.hidden = true;
  bannerEl.dataset.state = "hidden";
  bannerEl.setAttribute("role", "status");
  const button = bannerEl.querySelector<HTMLButtonElement>(".reconnect-rejoin");
  if (button) {
    button.hidden = true;
    button.onclick = null;
  }
}

/** Give-up time: `optionMs`, or in test mode `?reconnect_giveup_ms=` of the page URL, or RECONNECT_GIVE_UP_MS. */
export function giveUpMs(optionMs: number | undefined, test: boolean): number {
  if (optionMs && optionMs > 0) return optionMs;
  if (test) {
    const v = Number(new URLSearchParams(window.location.search).get("reconnect_giveup_ms"));
    if (Number.isFinite(v) && v > 0) return v;
  }
  return RECONNECT_GIVE_UP_MS;
}
