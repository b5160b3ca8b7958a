// WCAG 2.x contrast of every visible piece of text on the page against the background it is
// drawn on (the nearest ancestor's background colour, translucent layers blended over the
// ones beneath). Returns the texts under the minimum: 4.5:1, or 3:1 for large text (24 px, or
// 18.66 px bold). Disabled controls are exempt, as WCAG exempts inactive components.
const parse = (c) => {
  const m = c.match(/rgba?\(([^)]+)\)/);
  if (!m) return [0, 0, 0, 0];
  const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const over = (top, under) => {
  const a = top[3];
  return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat([1]);
};
const background = (el) => {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c[3] > 0) layers.push(c);
    if (c[3] >= 1) break;
  }
  let bg = [255, 255, 255, 1];
  for (const l of layers.reverse()) bg = over(l, bg);
  return bg;
};
const luminance = (c) => {
  const [r, g, b] = c.slice(0, 3).map((v) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const failures = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const seen = new Set();
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const el = n.parentElement;
  if (!el || seen.has(el) || !n.textContent.trim()) continue;
  seen.add(el);
  const s = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  if (s.visibility !== 'visible' || box.width === 0 || box.height === 0 || el.closest('[hidden]')) continue;
  if (el.closest(':disabled')) continue;
  const bg = background(el);
  const fg = over(parse(s.color), bg);
  const [l1, l2] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
  const ratio = (l1 + 0.05) / (l2 + 0.05);
  const size = parseFloat(s.fontSize);
  const large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
  const min = large ? 3 : 4.5;
  if (ratio < min) {
    failures.push(`${n.textContent.trim().slice(0, 40)} — ${ratio.toFixed(2)}:1 (needs ${min}:1; ${s.color} on rgb(${bg.slice(0, 3).map(Math.round)}))`);
  }
}
return failures;
