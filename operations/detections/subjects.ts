/**
 * Who a device is, for picking its template: its manufacturer, the profile of its newest live
 * certificate, and its legacy common auth ID. Three registry reads, once per device per process
 * (feed.ts keeps the answer).
 */
import type { Registry } from '../../registry/port.js';
import type { DeviceSubject } from './template.js';

export function registrySubjects(registry: Pick<Registry, 'getDevice' | 'listCertificatesOfDevice' | 'getLegacyCredentials'>): (deviceId: string) => Promise<DeviceSubject | undefined> {
  return async (deviceId) => {
    let device;
    try {
      device = await registry.getDevice(deviceId);
    } catch (e) {
      if ((e as { code?: string }).code === 'KAKUIN_E_DEVICE_NOT_FOUND') return undefined;
      throw e;
    }
    const certificates = await registry.listCertificatesOfDevice(deviceId);
    const live = certificates.filter((c) => c.status !== 'revoked').sort((a, b) => b.notBefore.getTime() - a.notBefore.getTime())[0];
    const legacy = await registry.getLegacyCredentials(deviceId);
    return {
      manufacturerId: device.manufacturerId,
      ...(live !== undefined && { profile: live.profile }),
      ...(legacy !== undefined && { commonAuthId: legacy.commonAuthId }),
    };
  };
}
