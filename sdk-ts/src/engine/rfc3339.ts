/**
 * The spec's strict RFC 3339 grammar, `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, to
 * milliseconds since the Unix epoch (further fraction digits truncated). Hand-written: `Date.parse`
 * accepts far more (and differs between engines); Rust and Python implement this same grammar.
 */

function digits(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Milliseconds since the epoch of a strict RFC 3339 timestamp, or `undefined`. */
export function parseRfc3339Millis(s: string): number | undefined {
  if (
    s.length < 20 ||
    s[4] !== "-" ||
    s[7] !== "-" ||
    s[10] !== "T" ||
    s[13] !== ":" ||
    s[16] !== ":"
  ) {
    return undefined;
  }
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 7);
  const day = digits(s, 8, 10);
  const hour = digits(s, 11, 13);
  const minute = digits(s, 14, 16);
  const second = digits(s, 17, 19);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    return undefined;
  }
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) {
    return undefined;
  }
  let i = 19;
  let millis = 0;
  if (s[i] === ".") {
    let n = 0;
    while (i + 1 + n < s.length && digits(s, i + 1 + n, i + 2 + n) >= 0) n++;
    if (n === 0) return undefined;
    for (let j = 0; j < Math.min(n, 3); j++) millis += digits(s, i + 1 + j, i + 2 + j) * [100, 10, 1][j]!;
    i += 1 + n;
  }
  let offset: number;
  const rest = s.length - i;
  if (rest === 1 && s[i] === "Z") {
    offset = 0;
  } else if (rest === 6 && (s[i] === "+" || s[i] === "-") && s[i + 3] === ":") {
    const h = digits(s, i + 1, i + 3);
    const m = digits(s, i + 4, i + 6);
    if (h < 0 || m < 0 || h > 23 || m > 59) return undefined;
    offset = (h * 60 + m) * (s[i] === "-" ? -1 : 1);
  } else {
    return undefined;
  }
  const days = daysFromCivil(year, month, day);
  const seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset * 60;
  return seconds * 1000 + millis;
}
