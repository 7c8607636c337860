/** Prometheus metrics of one service (its own prom-client registry): requests, latency, batch sizes, queue depth. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly latency: Histogram<'method' | 'route'>;
  readonly batchRows: Histogram<'op'>;
  readonly batchRequests: Histogram<'op'>;

  constructor(queueDepth: () => Record<string, number>) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'cmsae_' });
    this.requests = new Counter({ name: 'cmsae_http_requests_total', help: 'HTTP requests answered, by route and status', labelNames: ['method', 'route', 'status'], registers });
    this.latency = new Histogram({
      name: 'cmsae_http_request_duration_seconds',
      help: 'Time from receiving a request to sending its response',
      labelNames: ['method', 'route'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56],
      registers,
    });
    const pow2 = Array.from({ length: 14 }, (_, i) => 2 ** i);
    this.batchRows = new Histogram({ name: 'cmsae_batch_rows', help: 'Rows per native encode/decode call', labelNames: ['op'], buckets: pow2, registers });
    this.batchRequests = new Histogram({ name: 'cmsae_batch_requests', help: 'Requests gathered into one native call', labelNames: ['op'], buckets: pow2, registers });
    new Gauge({
      name: 'cmsae_queue_rows',
      help: 'Rows waiting or running per operation (bounded by maxQueueRows)',
      labelNames: ['op'],
      registers,
      collect() {
        for (const [op, n] of Object.entries(queueDepth())) this.set({ op }, n);
      },
    });
  }

  batch(op: string, rows: number, requests: number): void {
    this.batchRows.observe({ op }, rows);
    this.batchRequests.observe({ op }, requests);
  }

  observe(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc({ method, route, status: String(status) });
    this.latency.observe({ method, route }, seconds);
  }
}
