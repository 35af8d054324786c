// The cluster manager: applies CDS (add, update, remove clusters atomically, with Envoy's warming) and EDS, and drains
// the pools of replaced or removed clusters once their in-flight requests finish.
import { XdsValidationError } from '../../common/errors.js';
import type { envoy } from '../../xds/generated/types.js';
import { compileCluster, type ClusterCompileContext, type UpstreamClusterImpl } from './cluster.js';
import type { ClusterManager } from './types.js';

type Cluster = envoy.config.cluster.v3.Cluster;
type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;

export interface ClusterManagerOptions extends ClusterCompileContext {
  /** How long a new cluster may wait for its first EDS assignment or DNS answer before it is served anyway (Envoy's initial_fetch_timeout, 15 s). */
  readonly warmingTimeoutMs?: number;
}

export class ClusterManagerImpl implements ClusterManager {
  /** The clusters requests are routed to; replaced as a whole on every change. */
  private active: ReadonlyMap<string, UpstreamClusterImpl> = new Map();
  /** Clusters waiting for their first hosts; the previous version (if any) keeps serving meanwhile. */
  private readonly warming = new Map<string, UpstreamClusterImpl>();
  /** EDS assignments by service name that arrived before (or for) their cluster, replayed on cluster updates. */
  private readonly assignments = new Map<string, ClusterLoadAssignment>();
  private readonly draining = new Set<Promise<void>>();

  constructor(private readonly options: ClusterManagerOptions = {}) {}

  get(name: string): UpstreamClusterImpl | undefined {
    return this.active.get(name);
  }

  /** Every active cluster, for admin and stats. */
  clusters(): IterableIterator<UpstreamClusterImpl> {
    return this.active.values();
  }

  warmingClusters(): IterableIterator<UpstreamClusterImpl> {
    return this.warming.values();
  }

  /** Compiles every cluster first; on any error nothing changes and the XdsValidationError lists every problem. */
  private compileAll(clusters: readonly Cluster[]): UpstreamClusterImpl[] {
    const problems: string[] = [];
    const compiled: UpstreamClusterImpl[] = [];
    const names = new Set<string>();
    for (const c of clusters) {
      if (c.name && names.has(c.name)) problems.push(`Cluster ${c.name}: duplicate name`);
      names.add(c.name ?? '');
      try {
        compiled.push(compileCluster(c, this.options));
      } catch (err) {
        if (err instanceof XdsValidationError) problems.push(...err.details);
        else throw err;
      }
    }
    if (problems.length > 0) {
      for (const c of compiled) c.destroy();
      throw new XdsValidationError(problems);
    }
    return compiled;
  }

  /** Adds or replaces clusters (CDS delta or static config). Atomic: all compile or none applies. */
  addOrUpdate(clusters: readonly Cluster[]): void {
    for (const c of this.compileAll(clusters)) this.install(c);
  }

  /** State of the world: the given clusters become the whole set; the others are removed and drained. */
  applyClusters(clusters: readonly Cluster[]): void {
    const compiled = this.compileAll(clusters);
    const keep = new Set(compiled.map((c) => c.name));
    this.remove([...this.active.keys(), ...this.warming.keys()].filter((n) => !keep.has(n)));
    for (const c of compiled) this.install(c);
  }

  remove(names: readonly string[]): void {
    const next = new Map(this.active);
    for (const name of names) {
      const w = this.warming.get(name);
      if (w) {
        this.warming.delete(name);
        this.retire(w);
      }
      const old = next.get(name);
      if (old) {
        next.delete(name);
        this.retire(old);
      }
    }
    this.active = next;
  }

  private install(cluster: UpstreamClusterImpl): void {
    if (cluster.type === 'EDS') {
      const cla = this.assignments.get(cluster.edsServiceName);
      if (cla) cluster.applyLoadAssignment(cla);
    }
    const previousWarming = this.warming.get(cluster.name);
    if (previousWarming) {
      this.warming.delete(cluster.name);
      this.retire(previousWarming);
    }
    if (cluster.warm) {
      this.activate(cluster);
      return;
    }
    this.warming.set(cluster.name, cluster);
    const timer = setTimeout(() => this.activate(cluster), this.options.warmingTimeoutMs ?? 15_000);
    timer.unref();
    void cluster.ready.then(() => {
      clearTimeout(timer);
      this.activate(cluster);
    });
  }

  private activate(cluster: UpstreamClusterImpl): void {
    if (this.warming.has(cluster.name) && this.warming.get(cluster.name) !== cluster) return;
    this.warming.delete(cluster.name);
    const next = new Map(this.active);
    const old = next.get(cluster.name);
    if (old === cluster) return;
    next.set(cluster.name, cluster);
    this.active = next;
    if (old) this.retire(old);
  }

  private retire(cluster: UpstreamClusterImpl): void {
    const done = cluster.drain().finally(() => this.draining.delete(done));
    this.draining.add(done);
  }

  /**
   * EDS: applies an assignment to the clusters whose service name it names (active and warming). Validation errors throw
   * XdsValidationError and leave the previous endpoints serving. An assignment for an unknown cluster is kept for later.
   */
  applyLoadAssignment(name: string, cla: ClusterLoadAssignment): void {
    const targets = [...this.active.values(), ...this.warming.values()].filter((c) => c.type === 'EDS' && c.edsServiceName === name);
    for (const c of targets) c.applyLoadAssignment(cla);
    this.assignments.set(name, cla);
  }

  /** EDS removal of an assignment: the clusters keep their hosts (Envoy keeps the last assignment), it is only forgotten. */
  forgetLoadAssignment(name: string): void {
    this.assignments.delete(name);
  }

  /** Drains every cluster (shutdown); resolves when all connections are closed. */
  async close(): Promise<void> {
    this.remove([...this.active.keys(), ...this.warming.keys()]);
    await Promise.all([...this.draining]);
  }
}
