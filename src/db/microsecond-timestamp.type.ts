import { type Platform, Type } from '@mikro-orm/core';

/** A UTC `datetime(6)` value as MariaDB/MySQL print and accept it: `2024-01-31 10:00:00.123456`. */
export type DbTimestamp = string;

const pad = (value: number, width = 2) => String(value).padStart(width, '0');

/** Now, to the microsecond, as a `datetime(6)` literal (Date has milliseconds only). */
export function dbTimestampNow(): DbTimestamp {
  const nowMs = performance.timeOrigin + performance.now();
  const wholeMs = Math.floor(nowMs);
  const micros = Math.min(999_999, (wholeMs % 1000) * 1000 + Math.floor((nowMs - wholeMs) * 1000));
  const d = new Date(wholeMs);
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(micros, 6)}`
  );
}

/** A Date as a `datetime(6)` literal (its microseconds are 000). */
export function dbTimestampOf(date: Date): DbTimestamp {
  return `${date.toISOString().replace('T', ' ').replace('Z', '')}000`;
}

/** A `datetime(6)` literal as ISO 8601 UTC with six fractional digits: `2024-01-31T10:00:00.123456Z`. */
export function isoMicros(value: DbTimestamp): string {
  const [date, time = '00:00:00'] = value.split(' ');
  const [whole, fraction = ''] = time.split('.');
  return `${date}T${whole}.${fraction.padEnd(6, '0').slice(0, 6)}Z`;
}

/**
 * A `datetime(6)` column read and written as its text, so that its microseconds survive (mysql2
 * hands out a Date, which keeps milliseconds only).
 */
export class MicrosecondTimestampType extends Type<DbTimestamp, DbTimestamp> {
  override convertToDatabaseValue(value: DbTimestamp): DbTimestamp {
    return value;
  }

  override convertToJSValueSQL(key: string, _platform: Platform): string {
    return `DATE_FORMAT(${key}, '%Y-%m-%d %H:%i:%s.%f')`;
  }

  override convertToJSValue(value: DbTimestamp | Date): DbTimestamp {
    return typeof value === 'string' ? value : dbTimestampOf(value);
  }

  override compareAsType(): string {
    return 'string';
  }

  override getColumnType(): string {
    return 'datetime(6)';
  }
}
