// The connection quality indicator of a tile: a button in its top right corner with the
// received resolution and layer (badge), and its details panel (figures, quality picker).

import { QUALITY_CHOICES, formatBadge, formatDetails } from "./quality";
import type { LayerInfo, QualityChoice, QualityLevel, QualitySample } from "./quality";

export interface QualityView {
  tileId: string;
  level: QualityLevel;
  reasons: string[];
  sample: QualitySample;
  /** Remote tiles: the layer received (the badge shows it); null on local tiles. */
  layer: LayerInfo | null;
  /** The picker's choice when the tile's video is simulcast (picker shown), else null. */
  picker: QualityChoice | null;
}

/** Called when the user picks a quality in a tile's picker. */
export type PickHandler = (tileId: string, choice: QualityChoice) => void;

const LEVEL_TEXT: Record<QualityLevel, string> = { good: "good", fair: "fair", poor: "poor", unknown: "…" };

function tileElement(tileId: string): HTMLElement | null {
  return document.querySelector<HTMLElement>(`.tile[data-tile-id="${CSS.escape(tileId)}"]`);
}

function ensureWidget(tile: HTMLElement, onPick: PickHandler | null): HTMLElement {
  const existing = tile.querySelector<HTMLElement>(":scope > .quality");
  if (existing) return existing;
  const root = document.createElement("div");
  root.className = "quality";
  root.dataset.level = "unknown";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "quality-indicator";
  button.setAttribute("aria-expanded", "false");
  const bars = document.createElement("span");
  bars.className = "quality-bars";
  bars.setAttribute("aria-hidden", "true");
  for (let i = 0; i < 3; i++) bars.appendChild(document.createElement("i"));
  const label = document.createElement("span");
  label.className = "quality-label";
  // Remote tiles: received resolution and simulcast layer.
  const badge = document.createElement("span");
  badge.className = "quality-badge";
  badge.hidden = true;
  button.append(bars, label, badge);
  const details = document.createElement("div");
  details.className = "quality-details";
  details.hidden = true;
  const title = document.createElement("p");
  title.className = "quality-title";
  const list = document.createElement("dl");
  // Simulcast tracks: which layer to receive.
  const pick = document.createElement("label");
  pick.className = "quality-pick";
  pick.hidden = true;
  pick.append("Video quality ");
  const select = document.createElement("select");
  for (const c of QUALITY_CHOICES) {
    const o = document.createElement("option");
    o.value = c.value;
    o.textContent = c.label;
    select.appendChild(o);
  }
  select.addEventListener("change", () => {
    const id = tile.dataset.tileId;
    const choice = QUALITY_CHOICES.find((c) => c.value === select.value)?.value;
    if (id && choice && onPick) onPick(id, choice);
  });
  pick.appendChild(select);
  details.append(title, list, pick);
  button.addEventListener("click", (ev) => {
    ev.stopPropagation();
    const open = details.hidden;
    closeAllDetails();
    details.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) placeDetails(root);
  });
  details.addEventListener("click", (ev) => ev.stopPropagation());
  root.append(button, details);
  tile.appendChild(root);
  installCloseHandlers();
  return root;
}

function closeAllDetails(): void {
  document.querySelectorAll<HTMLElement>(".tile .quality").forEach((root) => {
    const details = root.querySelector<HTMLElement>(".quality-details");
    if (!details || details.hidden) return;
    details.hidden = true;
    root.querySelector(".quality-indicator")?.setAttribute("aria-expanded", "false");
  });
}

let closeHandlersInstalled = false;
/** A click elsewhere or Escape closes the open details panel. */
function installCloseHandlers(): void {
  if (closeHandlersInstalled) return;
  closeHandlersInstalled = true;
  document.addEventListener("click", () => closeAllDetails());
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeAllDetails();
  });
}

/**
 * The details panel is `position: fixed` (tiles clip their content and can be small): below the
 * indicator, right-aligned with it, kept inside the window (above it when there is no room below).
 */
function placeDetails(root: HTMLElement): void {
  const button = root.querySelector<HTMLElement>(".quality-indicator");
  const details = root.querySelector<HTMLElement>(".quality-details");
  if (!button || !details || details.hidden) return;
  const r = button.getBoundingClientRect();
  const w = details.offsetWidth;
  const h = details.offsetHeight;
  const margin = 4;
  const left = Math.max(margin, Math.min(r.right - w, window.innerWidth - w - margin));
  let top = r.bottom + margin;
  if (top + h > window.innerHeight - margin) top = Math.max(margin, r.top - h - margin);
  details.style.left = `${Math.round(left)}px`;
  details.style.top = `${Math.round(top)}px`;
}

/** Renders (creating if needed) the indicator of the view's tile. */
export function renderQuality(view: QualityView, onPick: PickHandler | null = null): void {
  const tile = tileElement(view.tileId);
  if (!tile) return;
  const root = ensureWidget(tile, onPick);
  root.dataset.level = view.level;
  // Small tiles: bars only (the level stays in the tooltip and the accessible name).
  root.dataset.compact = String(tile.clientWidth < 200 || tile.clientHeight < 110);
  const button = root.querySelector(".quality-indicator") as HTMLButtonElement;
  const what = view.sample.direction === "inbound" ? "Receiving" : "Sending";
  const text = view.level === "unknown" ? (view.sample.streams === 0 ? "no media" : "measuring") : view.level;
  button.title = `Connection: ${text}${view.reasons.length ? ` (${view.reasons.join(", ")})` : ""}`;
  button.setAttribute("aria-label", `${what} quality: ${text}`);
  (root.querySelector(".quality-label") as HTMLElement).textContent = LEVEL_TEXT[view.level];
  (root.querySelector(".quality-title") as HTMLElement).textContent =
    `${what}: ${text}${view.reasons.length ? ` — ${view.reasons.join(", ")}` : ""}`;
  const list = root.querySelector(".quality-details dl") as HTMLElement;
  const rows = formatDetails(view.sample);
  if (list.children.length !== rows.length * 2) {
    list.replaceChildren(
      ...rows.flatMap((r) => {
        const dt = document.createElement("dt");
        dt.textContent = r.label;
        const dd = document.createElement("dd");
        dd.dataset.field = r.field;
        return [dt, dd];
      }),
    );
  }
  for (const r of rows) {
    const dd = list.querySelector<HTMLElement>(`dd[data-field="${r.field}"]`);
    if (!dd) continue;
    const dt = dd.previousElementSibling as HTMLElement | null;
    if (dt) dt.textContent = r.label;
    dd.textContent = r.text;
    dd.dataset.value = r.value === null ? "" : String(r.value);
  }
  // The badge is inside the button, whose aria-label hides it: say it there too.
  const badge = renderBadge(root, view);
  if (badge) button.setAttribute("aria-label", `${what} quality: ${text}; ${badge.charAt(0).toLowerCase()}${badge.slice(1)}`);
  placeDetails(root);
}

/**
 * The badge (remote tiles with video, or once a layer was announced) and the picker. Returns the
 * badge's tooltip when shown.
 */
function renderBadge(root: HTMLElement, view: QualityView): string | null {
  let shown: string | null = null;
  const badge = root.querySelector<HTMLElement>(".quality-badge");
  if (badge) {
    const show = view.layer !== null && (view.sample.hasVideo || view.layer.encoding !== null);
    badge.hidden = !show;
    if (show) {
      const b = formatBadge(view.sample, view.layer);
      if (badge.textContent !== b.text) badge.textContent = b.text;
      badge.title = b.title;
      badge.dataset.width = String(view.sample.width ?? "");
      badge.dataset.height = String(view.sample.height ?? "");
      badge.dataset.layer = view.layer?.encoding ?? "";
      badge.dataset.reason = view.layer?.reason ?? "";
      shown = b.title;
    }
  }
  const pick = root.querySelector<HTMLElement>(".quality-pick");
  const select = pick?.querySelector("select");
  if (pick && select) {
    pick.hidden = view.picker === null;
    root.dataset.simulcast = String(view.picker !== null);
    if (view.picker !== null && select.value !== view.picker) select.value = view.picker;
  }
  return shown;
}

/** Removes the indicator of a tile (if it still exists). */
export function removeQuality(tileId: string): void {
  tileElement(tileId)?.querySelector(":scope > .quality")?.remove();
}
