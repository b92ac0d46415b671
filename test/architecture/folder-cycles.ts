import { placeOf } from './import-rules.js';
import type { SourceGraph } from './source-graph.js';

export interface FolderCycle {
  /** The folders of src/identity that reach each other, sorted. */
  folders: string[];
  /** The shortest way round, first folder repeated at the end: the quickest arrow to cut. */
  shortest: string[];
  /** Every arrow between two of those folders, with one file import that makes it. */
  arrows: { from: string; to: string; example: string }[];
}

/** L6: the folders of src/identity, as a graph, have no cycle (strongly connected groups of 2+). */
export function folderCycles(graph: SourceGraph): FolderCycle[] {
  const arrows = new Map<string, Map<string, string>>();
  for (const e of graph.edges) {
    if (e.target.kind !== 'module') continue;
    const from = placeOf(e.from);
    const to = placeOf(e.target.path);
    if (from.area !== 'identity' || to.area !== 'identity' || from.folder === to.folder) continue;
    const out = arrows.get(from.folder) ?? new Map<string, string>();
    if (!out.has(to.folder)) out.set(to.folder, `${e.from} imports ${e.target.path}`);
    arrows.set(from.folder, out);
  }
  return stronglyConnected(arrows)
    .filter((group) => group.length > 1)
    .map((group) => {
      const members = new Set(group);
      const inside: FolderCycle['arrows'] = [];
      for (const from of [...members].sort()) {
        for (const [to, example] of [...(arrows.get(from) ?? [])].sort()) {
          if (members.has(to)) inside.push({ from, to, example });
        }
      }
      return { folders: [...members].sort(), shortest: shortestCycle(members, arrows), arrows: inside };
    });
}

export function describeCycle(c: FolderCycle): string {
  return [
    `[L6 no import cycle between folders of src/identity] ${c.folders.join(', ')} import each other; shortest: ${c.shortest.join(' -> ')}`,
    ...c.arrows.map((a) => `    ${a.from} -> ${a.to}  (${a.example})`),
  ].join('\n');
}

function shortestCycle(members: Set<string>, arrows: Map<string, Map<string, string>>): string[] {
  let best: string[] = [];
  for (const start of [...members].sort()) {
    // Breadth first from start, inside the group, until an arrow leads back to start.
    const cameFrom = new Map<string, string>();
    const queue = [start];
    let found: string | undefined;
    while (queue.length > 0 && found === undefined) {
      const v = queue.shift()!;
      for (const w of [...(arrows.get(v)?.keys() ?? [])].sort()) {
        if (!members.has(w)) continue;
        if (w === start) {
          found = v;
          break;
        }
        if (!cameFrom.has(w)) {
          cameFrom.set(w, v);
          queue.push(w);
        }
      }
    }
    if (found === undefined) continue;
    const path = [start];
    for (let v: string | undefined = found; v !== undefined && v !== start; v = cameFrom.get(v)) path.splice(1, 0, v);
    path.push(start);
    if (best.length === 0 || path.length < best.length) best = path;
  }
  return best;
}

/** Tarjan's algorithm over a small adjacency map. */
function stronglyConnected(arrows: Map<string, Map<string, string>>): string[][] {
  const nodes = new Set<string>([...arrows.keys(), ...[...arrows.values()].flatMap((m) => [...m.keys()])]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of arrows.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      groups.push(group);
    }
  };
  for (const v of [...nodes].sort()) if (!index.has(v)) visit(v);
  return groups;
}
