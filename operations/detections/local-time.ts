/**
 * Minutes since local midnight in an IANA time zone (the `usualHours` rule), with the platform's
 * Intl (full ICU in Node's official builds), so no time-zone library or table is kept here. One
 * formatter per zone: constructing Intl.DateTimeFormat is the expensive part.
 */
import { KakuinError } from '../../errors/index.js';

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    } catch {
      throw new KakuinError('KAKUIN_E_VALIDATION', `${JSON.stringify(timeZone)} is not an IANA time zone (Europe/Berlin, America/New_York, UTC)`, { field: 'usualHours.timeZone' });
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws KAKUIN_E_VALIDATION when the zone is unknown to this platform. */
export function checkTimeZone(timeZone: string): void {
  formatter(timeZone);
}

export function localMinuteOfDay(atMs: number, timeZone: string): number {
  let hour = 0;
  let minute = 0;
  for (const p of formatter(timeZone).formatToParts(atMs)) {
    if (p.type === 'hour') hour = Number(p.value);
    else if (p.type === 'minute') minute = Number(p.value);
  }
  return hour * 60 + minute;
}

/** `HH:MM` → minutes; undefined when it is not a time of day. */
export function minutesOf(hhmm: string): number | undefined {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(hhmm);
  return m === null ? undefined : Number(m[1]) * 60 + Number(m[2]);
}

/** Whether `minute` is in [from, to); a window with from > to wraps midnight (22:00–06:00). */
export function inWindow(minute: number, from: number, to: number): boolean {
  return from <= to ? minute >= from && minute < to : minute >= from || minute < to;
}
