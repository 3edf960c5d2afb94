// A small, safe markdown subset for text widgets: headings, paragraphs, lists, **bold**,
// *italic*, `code` and [links](https://…). Everything becomes DOM nodes built from text:
// no HTML from the widget is ever parsed, so markup in it shows as text.

const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\n]+\*|_[^_\n]+_)|(\[[^\]\n]+\]\([^)\s]+\))/g;
const SAFE_URL = /^(https?:|mailto:)/i;

function inline(text: string, into: HTMLElement): void {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    const index = match.index ?? 0;
    if (index > last) into.append(text.slice(last, index));
    const token = match[0];
    if (match[1]) {
      into.append(element("code", token.slice(1, -1)));
    } else if (match[2]) {
      const strong = document.createElement("strong");
      inline(token.slice(2, -2), strong);
      into.append(strong);
    } else if (match[3]) {
      const em = document.createElement("em");
      inline(token.slice(1, -1), em);
      into.append(em);
    } else {
      const close = token.indexOf("](");
      const label = token.slice(1, close);
      const href = token.slice(close + 2, -1);
      if (SAFE_URL.test(href)) {
        const a = document.createElement("a");
        a.href = href;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        inline(label, a);
        into.append(a);
      } else {
        into.append(label);
      }
    }
    last = index + token.length;
  }
  if (last < text.length) into.append(text.slice(last));
}

function element(tag: string, text: string): HTMLElement {
  const el = document.createElement(tag);
  el.textContent = text;
  return el;
}

export function renderMarkdown(source: string): DocumentFragment {
  const out = document.createDocumentFragment();
  const blocks = source.replace(/\r\n?/g, "\n").split(/\n\s*\n/);
  for (const block of blocks) {
    const lines = block.split("\n").filter((line) => line.trim() !== "");
    if (!lines.length) continue;
    const heading = /^(#{1,6})\s+(.*)$/.exec(lines[0]);
    if (heading && lines.length === 1) {
      const level = Math.min(6, heading[1].length + 2); // the widget title is the h2
      const h = document.createElement(`h${level}`);
      inline(heading[2], h);
      out.append(h);
      continue;
    }
    if (lines.every((line) => /^\s*[-*+]\s+/.test(line)) || lines.every((line) => /^\s*\d+[.)]\s+/.test(line))) {
      const ordered = /^\s*\d/.test(lines[0]);
      const list = document.createElement(ordered ? "ol" : "ul");
      for (const line of lines) {
        const li = document.createElement("li");
        inline(line.replace(/^\s*([-*+]|\d+[.)])\s+/, ""), li);
        list.append(li);
      }
      out.append(list);
      continue;
    }
    const p = document.createElement("p");
    lines.forEach((line, i) => {
      if (i) p.append(document.createElement("br"));
      inline(line, p);
    });
    out.append(p);
  }
  return out;
}
