// The Markdown documents' diagrams and math, read by Mermaid's and KaTeX's own
// parsers, for tests/test_document_escaping.py: one process for all of them (Mermaid
// loads slowly).
//
// stdin: {"mermaid": [diagram text, ...], "katex": [[tex, display], ...]}.
// stdout: {"mermaid": [...], "katex": [...]}, one entry per input: for a diagram
// {"error": null, "nodes": {id: label}, "edges": [[from, to, label]]}, each label as
// a reader sees it (Mermaid's #quot; entities and HTML's decoded), or {"error": "..."};
// for math null, or KaTeX's error.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";
import katex from "katex";

// Mermaid sanitizes labels with DOMPurify, which needs a DOM: jsdom's, made global
// before Mermaid is first imported.
const { window } = new JSDOM("");
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import("mermaid");

// What a reader sees of a label: Mermaid keeps its entities (#quot;) as placeholders
// until it draws (its decodeEntities), then the browser decodes HTML's (&quot;).
function shown(text) {
  const html = String(text ?? "")
    .replace(/ﬂ°°/g, "&#")
    .replace(/ﬂ°/g, "&")
    .replace(/¶ß/g, ";");
  const area = window.document.createElement("textarea");
  area.innerHTML = html;
  return area.value;
}

function message(error) {
  return String(error?.message ?? error).slice(0, 400);
}

const input = JSON.parse(readFileSync(0, "utf8"));
const diagrams = [];
for (const text of input.mermaid ?? []) {
  try {
    await mermaid.parse(text);
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    const nodes = {};
    for (const vertex of diagram.db.getVertices().values()) {
      nodes[vertex.id] = shown(vertex.text);
    }
    const edges = diagram.db.getEdges().map((e) => [e.start, e.end, shown(e.text)]);
    diagrams.push({ error: null, nodes, edges });
  } catch (error) {
    diagrams.push({ error: message(error) });
  }
}
const math = (input.katex ?? []).map(([tex, display]) => {
  try {
    katex.renderToString(tex, { displayMode: display, throwOnError: true });
    return null;
  } catch (error) {
    return message(error);
  }
});
process.stdout.write(JSON.stringify({ mermaid: diagrams, katex: math }));
