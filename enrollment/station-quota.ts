/**
 * Per-station issuance quotas (`POST /api/v1/stations/{id}/quota {maxIssuances}`): a station may have
 * at most that many certificates issued through it, counted from the audit trail (each
 * certificate.issued event commits with its certificate). Issuances in flight in this process are
 * counted too, so concurrent batch items cannot overshoot the quota; near the limit one may be
 * refused a moment early while another is committing.
 */
import type { Registry, Station } from '../registry/port.js';
import { KakuinError } from '../errors/index.js';
import { readOnce } from './shared-reads.js';

export class StationQuota {
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly registry: Registry) {}

  /**
   * Reserves one issuance for the station or throws KAKUIN_E_STATION_QUOTA_EXHAUSTED; call the
   * returned release after. `stations`: station reads shared by the items of one batch (the quota
   * setting is then read once per batch; without a quota, nothing else is read).
   */
  async reserve(stationId: string, stations?: Map<string, Promise<Station>>): Promise<() => void> {
    this.inFlight.set(stationId, (this.inFlight.get(stationId) ?? 0) + 1);
    const release = () => {
      const n = (this.inFlight.get(stationId) ?? 1) - 1;
      if (n <= 0) this.inFlight.delete(stationId);
      else this.inFlight.set(stationId, n);
    };
    try {
      const station = await readOnce(stations, stationId, () => this.registry.getStation(stationId));
      if (station.maxIssuances === undefined) return release;
      const issued = await this.registry.countStationIssuances(stationId);
      if (issued + (this.inFlight.get(stationId) ?? 0) > station.maxIssuances) {
        throw new KakuinError('KAKUIN_E_STATION_QUOTA_EXHAUSTED', `this station's issuance quota (${station.maxIssuances}) is used up`);
      }
      return release;
    } catch (e) {
      release();
      throw e;
    }
  }

}
