// The dashboard page: polls /api/state, lays the service graph out with dagre and draws it as SVG, shows a service's detail and the proxies' sync status.
import type Dagre from '@dagrejs/dagre';
import type { DashboardState } from '../mesh-source.js';
import type { TrafficEdge } from '../traffic-graph.js';

declare const dagre: typeof Dagre;

const SVG = 'http://www.w3.org/2000/svg';
const NODE_W = 150;
const NODE_H = 44;
let selected: string | undefined;
let last: DashboardState | undefined;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, attrs: Record<string, string> = {}): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function edgeLabel(e: TrafficEdge): string {
  const rps = e.rps === null ? '– rps' : `${e.rps.toFixed(e.rps < 10 ? 2 : 1)} rps`;
  const err = e.errorRate === null ? '' : ` · ${(e.errorRate * 100).toFixed(1)}% err`;
  const p99 = e.p99Ms === null ? '' : ` · p99 ${Math.round(e.p99Ms)} ms`;
  return `${rps}${err}${p99}`;
}

function drawGraph(state: DashboardState): void {
  const host = document.getElementById('graph')!;
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 30, ranksep: 120, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of state.graph.nodes) g.setNode(n.id, { width: NODE_W, height: NODE_H });
  for (const e of state.graph.edges) g.setEdge(e.source, e.destination, { width: 190, height: 16, labelpos: 'c' });
  dagre.layout(g);
  const size = g.graph();
  const root = svg('svg', { viewBox: `0 0 ${Math.max(size.width ?? 0, 300)} ${Math.max(size.height ?? 0, 200)}`, role: 'img' });
  root.appendChild(svg('defs', {})).appendChild(svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' })).appendChild(svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#7a8599' }));
  for (const e of state.graph.edges) {
    const layout = g.edge(e.source, e.destination);
    const points: readonly { x: number; y: number }[] = layout.points ?? [];
    const group = root.appendChild(svg('g', { class: `edge${(e.errorRate ?? 0) > 0 ? ' errors' : ''}`, 'data-edge': `${e.source}->${e.destination}`, 'data-rps': e.rps ?? 0 }));
    group.appendChild(svg('path', { d: points.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ') }));
    group.appendChild(svg('text', { x: layout.x ?? 0, y: (layout.y ?? 0) + 4, 'text-anchor': 'middle' }, edgeLabel(e)));
    // A padlock drawn in SVG rather than an emoji, which servers' headless browsers often have no font for.
    if (e.mtls) {
      const lock = group.appendChild(svg('g', { class: 'lock', transform: `translate(${(layout.x ?? 0) - 100},${(layout.y ?? 0) - 6})` }));
      lock.appendChild(svg('title', {}, 'mutual TLS'));
      lock.appendChild(svg('path', { d: 'M2,5 V3 a3,3 0 0 1 6,0 V5', fill: 'none', stroke: '#197a35', 'stroke-width': 1.4 }));
      lock.appendChild(svg('rect', { x: 0, y: 5, width: 10, height: 7, rx: 1, fill: '#197a35' }));
    }
  }
  for (const n of state.graph.nodes) {
    const p = g.node(n.id);
    const group = root.appendChild(svg('g', { class: `node${n.id === selected ? ' selected' : ''}`, 'data-service': n.id, transform: `translate(${p.x - NODE_W / 2},${p.y - NODE_H / 2})` }));
    group.appendChild(svg('rect', { width: NODE_W, height: NODE_H }));
    group.appendChild(svg('text', { x: NODE_W / 2, y: 18, 'text-anchor': 'middle' }, n.id));
    group.appendChild(svg('text', { x: NODE_W / 2, y: 34, 'text-anchor': 'middle', class: 'muted' }, n.versions.join(', ')));
    group.addEventListener('click', () => {
      selected = n.id;
      if (last) render(last);
    });
  }
  host.replaceChildren(root);
  if (state.graph.nodes.length === 0) host.appendChild(el('p', 'No traffic seen yet: send some requests through the mesh.', { class: 'muted' }));
}

function edgeTable(title: string, edges: readonly TrafficEdge[], peer: (e: TrafficEdge) => string): HTMLElement {
  const box = el('div');
  box.appendChild(el('h3', title));
  if (edges.length === 0) {
    box.appendChild(el('p', 'none', { class: 'muted' }));
    return box;
  }
  const table = box.appendChild(el('table'));
  const head = table.appendChild(el('tr'));
  for (const h of ['service', 'traffic']) head.appendChild(el('th', h));
  for (const e of edges) {
    const row = table.appendChild(el('tr'));
    row.appendChild(el('td', peer(e)));
    row.appendChild(el('td', `${e.mtls ? 'mTLS · ' : ''}${edgeLabel(e)}`));
  }
  return box;
}

function drawDetail(state: DashboardState): void {
  const host = document.getElementById('detail')!;
  if (!selected) return;
  const node = state.graph.nodes.find((n) => n.id === selected);
  const config = state.services[selected];
  const parts: HTMLElement[] = [el('h2', selected)];
  if (node) parts.push(el('p', `namespace ${node.namespace || '-'} · versions ${node.versions.join(', ') || '-'} · workloads ${node.workloads.join(', ') || '-'}`, { class: 'muted' }));
  parts.push(edgeTable('Inbound', state.graph.edges.filter((e) => e.destination === selected), (e) => e.source));
  parts.push(edgeTable('Outbound', state.graph.edges.filter((e) => e.source === selected), (e) => e.destination));
  for (const [title, list] of [['VirtualServices', config?.virtualServices ?? []], ['DestinationRules', config?.destinationRules ?? []]] as const) {
    parts.push(el('h3', title));
    if (list.length === 0) parts.push(el('p', 'none', { class: 'muted' }));
    for (const r of list) {
      const box = el('details', undefined, { 'data-resource': `${r.kind} ${r.metadata.namespace}/${r.metadata.name}` });
      box.appendChild(el('summary', `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`));
      box.appendChild(el('pre', JSON.stringify(r.spec, null, 2)));
      parts.push(box);
    }
  }
  parts.push(el('h3', 'Validation errors'));
  const problems = config?.problems ?? [];
  if (problems.length === 0) parts.push(el('p', 'none', { class: 'muted' }));
  for (const p of problems) parts.push(el('p', p.text ?? p.message ?? '', { class: 'problem' }));
  host.replaceChildren(...parts);
}

function drawSync(state: DashboardState): void {
  const host = document.getElementById('sync')!;
  const types = ['CDS', 'LDS', 'EDS', 'RDS', 'SDS'];
  const parts: HTMLElement[] = [el('h2', 'Proxy sync status')];
  if (state.sync.length === 0) parts.push(el('p', 'No proxies connected to the control plane (or it is not reachable).', { class: 'muted' }));
  else {
    const table = el('table');
    const head = table.appendChild(el('tr'));
    for (const h of ['proxy', ...types, 'last NACK']) head.appendChild(el('th', h));
    for (const p of state.sync) {
      const row = table.appendChild(el('tr', undefined, { 'data-proxy': p.proxy }));
      // istioctl's name for a proxy: `reviews-v1.default` from `sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local`.
      row.appendChild(el('td', p.proxy.split('~')[2] || p.proxy, { title: p.proxy }));
      for (const t of types) {
        const state = p.types[t]?.state ?? '-';
        row.appendChild(el('td', state, { class: state.replace(' ', '_') }));
      }
      row.appendChild(el('td', Object.entries(p.types).filter(([, t]) => t.nack).map(([k, t]) => `${k}: ${t.nack}`).join('; ') || '-'));
    }
    parts.push(table);
  }
  host.replaceChildren(...parts);
}

function render(state: DashboardState): void {
  last = state;
  drawGraph(state);
  drawDetail(state);
  drawSync(state);
  const failed = state.sources.filter((s) => !s.ok);
  document.getElementById('status')!.textContent =
    `updated ${new Date(state.updatedAt).toLocaleTimeString()} · metrics from ${state.metricsFrom} · ${state.configProblems} config problem(s)` +
    (failed.length ? ` · unreachable: ${failed.map((s) => s.url).join(', ')}` : '');
}

async function poll(): Promise<void> {
  try {
    const res = await fetch('/api/state', { cache: 'no-store' });
    render((await res.json()) as DashboardState);
  } catch (err) {
    document.getElementById('status')!.textContent = `dashboard server unreachable: ${(err as Error).message}`;
  }
  setTimeout(() => void poll(), 2_000);
}

void poll();
