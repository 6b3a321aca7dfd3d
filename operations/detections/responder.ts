/**
 * What happens when a rule fires (README "Detections"): the finding becomes a detection (store),
 * then its action runs — `record` nothing more; `alert` a `detection.alert` audit event, which
 * events out (operations/events) deliver; `suspend` the device's suspension (certificateHold, so
 * reversible) naming the detection, through the same RevocationService an operator uses, so the
 * kill switch (OCSP, CRL, gateways closing sessions) follows. Never a revocation: a false positive
 * must cost a resume, not a device.
 *
 * Findings come from the engine synchronously on a hot path; they are queued and handled one at a
 * time here, off that path. The queue is bounded: beyond it findings are counted and dropped (a
 * storm of detections is itself visible in the log and /metrics).
 */
import type { DetectionRecord, DetectionStore } from '../../registry/detections.js';
import type { NewAuditEvent } from '../../registry/port.js';
import type { Finding } from './engine.js';

export interface DeviceSuspender {
  /** RevocationService.suspendDevice: KAKUIN_E_DEVICE_STATE when the device is not active/registered. */
  suspendDevice(deviceId: string, actor: string, details: { reason: string; detectionId: string }): Promise<unknown>;
}

export interface AuditSink {
  appendAuditEvent(event: NewAuditEvent): Promise<unknown>;
}

export interface DetectionResponderOptions {
  store: DetectionStore;
  suspender: DeviceSuspender;
  audit: AuditSink;
  /** Findings waiting at most; default 10,000. */
  maxQueued?: number;
  onError?: (error: unknown, finding: Finding) => void;
  /**
   * Applied to the source addresses in evidence before it is stored (activity.addressPrefix: the
   * network, not the household). The rules themselves saw the whole address.
   */
  redactAddress?: (address: string) => string;
  /** After each detection is handled (tests, the wiring's wake-ups). */
  onHandled?: (detection: DetectionRecord) => void;
}

export const DETECTION_ACTOR_PREFIX = 'detection:';

export class DetectionResponder {
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  dropped = 0;
  handled = 0;

  constructor(private readonly o: DetectionResponderOptions) {}

  /** The engine's onFinding. */
  readonly accept = (finding: Finding): void => {
    if (this.queued >= (this.o.maxQueued ?? 10_000)) {
      this.dropped++;
      return;
    }
    this.queued++;
    this.chain = this.chain.then(() => this.handle(finding)).catch((e: unknown) => this.o.onError?.(e, finding)).finally(() => {
      this.queued--;
    });
  };

  /** Resolves once every finding accepted so far is handled. */
  idle(): Promise<void> {
    return this.chain;
  }

  private redacted(f: Finding): { summary: string; evidence: Record<string, unknown> } {
    const r = this.o.redactAddress;
    if (r === undefined) return { summary: f.summary, evidence: f.evidence };
    const e = { ...f.evidence };
    let summary = f.summary;
    for (const k of ['address', 'newAddress'] as const) {
      if (typeof e[k] === 'string') {
        const to = r(e[k] as string);
        summary = summary.split(e[k] as string).join(to);
        e[k] = to;
      }
    }
    if (Array.isArray(e.openAddresses)) e.openAddresses = (e.openAddresses as string[]).map((a) => r(a));
    return { summary, evidence: e };
  }

  private async handle(f: Finding): Promise<void> {
    const { summary, evidence } = this.redacted(f);
    const d = await this.o.store.createDetection({
      deviceId: f.deviceId, templateId: f.templateId, templateVersion: f.templateVersion, rule: f.rule, action: f.action,
      summary, evidence, detectedAt: f.at,
    });
    const actor = `${DETECTION_ACTOR_PREFIX}${d.id}`;
    let outcome = 'recorded';
    if (f.action === 'alert') {
      await this.o.audit.appendAuditEvent({
        type: 'detection.alert', actor, deviceId: f.deviceId, at: f.at,
        details: { detectionId: d.id, rule: f.rule, templateId: f.templateId, templateVersion: f.templateVersion, summary },
      });
      outcome = 'alerted';
    } else if (f.action === 'suspend') {
      try {
        await this.o.suspender.suspendDevice(f.deviceId, actor, { reason: `${f.rule} (template ${f.templateId} v${f.templateVersion}): ${summary}`, detectionId: d.id });
        outcome = 'suspended';
      } catch (e) {
        // Already suspended, revoked or retired: the detection stands, the device is left as it is.
        if ((e as { code?: string }).code !== 'KAKUIN_E_DEVICE_STATE') throw e;
        outcome = `not suspended: ${(e as Error).message}`;
      }
    }
    await this.o.store.setDetectionOutcome(d.id, outcome);
    this.handled++;
    this.o.onHandled?.({ ...d, outcome });
  }
}
