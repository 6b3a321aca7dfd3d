/**
 * The enrollment options of the config: named device profiles (`ca.profiles`), the station
 * certificate lifetime and a fractional `enrollment.overlapHours`, validated once at start.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../cli/config.js';
import { isKakuinError } from '../../errors/index.js';
import { makeTempDir } from '../support/index.js';

describe('config: certificate profiles, station certificates, overlap', function () {
  let tmp: { dir: string; cleanup: () => void };

  beforeEach(() => {
    tmp = makeTempDir();
  });

  afterEach(() => tmp.cleanup());

  function load(file: object) {
    const f = path.join(tmp.dir, 'kakuin.json');
    writeFileSync(f, JSON.stringify(file));
    return loadConfig({ KAKUIN_DATA_DIR: tmp.dir, KAKUIN_CONFIG: f }, tmp.dir);
  }

  function refused(file: object): string {
    try {
      load(file);
    } catch (e) {
      if (isKakuinError(e) && e.code === 'KAKUIN_E_CONFIG') return e.message;
      throw e;
    }
    throw new Error('the config was accepted');
  }

  it('defaults: a 30-day short-lived profile, 365-day station certificates, no overlap', () => {
    const c = loadConfig({ KAKUIN_DATA_DIR: tmp.dir }, tmp.dir);
    expect(c.ca.profiles).to.deep.equal({ 'short-lived': { validityDays: 30, backdateSeconds: 3600 } });
    expect(c.ca.station.validityDays).to.equal(365);
    expect(c.enrollment.overlapHours).to.equal(0);
  });

  it('takes named profiles, a station lifetime and fractional overlap hours from the file', () => {
    const c = load({
      ca: { profiles: { pilot: { validityDays: 7 }, idevid: { validityDays: 'no-well-defined-expiration', backdateSeconds: 0 } }, station: { validityDays: 90 } },
      enrollment: { overlapHours: 0.5 },
    });
    expect(c.ca.profiles).to.deep.equal({
      pilot: { validityDays: 7, backdateSeconds: 3600 }, idevid: { validityDays: 'no-well-defined-expiration', backdateSeconds: 0 },
    });
    expect(c.ca.station.validityDays).to.equal(90);
    expect(c.enrollment.overlapHours).to.equal(0.5);
  });

  it('refuses reserved or malformed profile names, bad lifetimes, unknown fields and negative overlaps', () => {
    expect(refused({ ca: { profiles: { device: { validityDays: 1 } } } })).to.include('ca.profiles.device');
    expect(refused({ ca: { profiles: { station: { validityDays: 1 } } } })).to.include('ca.profiles.station');
    expect(refused({ ca: { profiles: { 'Bad Name': { validityDays: 1 } } } })).to.include('profile name');
    expect(refused({ ca: { profiles: { pilot: { validityDays: 0 } } } })).to.include('ca.profiles.pilot.validityDays');
    expect(refused({ ca: { profiles: { pilot: { validityDays: 7, colour: 'red' } } } })).to.include('colour');
    expect(refused({ ca: { profiles: ['pilot'] } })).to.include('ca.profiles');
    expect(refused({ ca: { station: { validityDays: 0 } } })).to.include('ca.station.validityDays');
    expect(refused({ enrollment: { overlapHours: -1 } })).to.include('enrollment.overlapHours');
  });
});
