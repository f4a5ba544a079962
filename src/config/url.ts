// Endpoint URLs: what one may be (one grammar, run by the CRD's CEL and by the TypeScript
// rule alike, so the API server and the file source give the same verdict), and the one way
// any URL is printed in a message (errors, logs, Events, status, /debug/state): without its
// user info, its query values or its fragment, because those are where credentials hide.

/** RE2 and JavaScript read these the same way: no lookaround, no backreferences, no flags. */
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4 = `${OCTET}([.]${OCTET}){3}`;
const H16 = '[0-9A-Fa-f]{1,4}';
/** RFC 4291 text forms without an embedded IPv4 part or a zone */
const IPV6 =
  `((${H16}:){7}${H16}|(${H16}:){1,7}:|(${H16}:){1,6}:${H16}|(${H16}:){1,5}(:${H16}){1,2}|(${H16}:){1,4}(:${H16}){1,3}|` +
  `(${H16}:){1,3}(:${H16}){1,4}|(${H16}:){1,2}(:${H16}){1,5}|${H16}:(:${H16}){1,6}|:((:${H16}){1,7}|:))`;
/** DNS-like labels; the last one starts with a letter, so a host is never a malformed IPv4 address */
const LABEL_CHAR = '[-A-Za-z0-9_]';
const DNS_NAME = `([A-Za-z0-9_](${LABEL_CHAR}*[A-Za-z0-9_])?[.])*[A-Za-z](${LABEL_CHAR}*[A-Za-z0-9_])?`;
const PORT = '([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])';
/** RFC 3986 pchar, a percent sign only as %XX */
const PCHAR = "([-A-Za-z0-9._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})";

/** RFC 3986 userinfo: parsed here so that the URL's shape and its credentials are separate rules */
const USERINFO_PART = "([-A-Za-z0-9._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*@";

/**
 * http(s)://[userinfo@]host[:port][/path][?query]: a DNS name, a dotted IPv4 address or a
 * bracketed IPv6 address; a port from 0 to 65535; no fragment. Every string it accepts is a URL
 * to WHATWG (Node's URL) and to Go's url.ParseRequestURI (CEL's isURL/url()). User info passes
 * here and is refused by its own rule, with its own message.
 */
export const ENDPOINT_URL_PATTERN = `^https?://(${USERINFO_PART})?(${DNS_NAME}|${IPV4}|\\[${IPV6}\\])(:${PORT})?(/(${PCHAR}|/)*)?([?](${PCHAR}|[/?])*)?$`;

/** user info: an "@" before the first "/", "?" or "#" after the scheme's "//" */
export const URL_USERINFO_PATTERN = '^[A-Za-z][-A-Za-z0-9+.]*://[^/?#]*@';

/** A string as a CEL single-quoted literal. */
export function celString(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

const USERINFO = new RegExp(URL_USERINFO_PATTERN);

/**
 * https://user:pass@host/p?key=v#frag -> https://host/p?key=redacted. Works on any string, a
 * URL that does not parse included (that is when a message most needs to show it).
 */
export function redactUrl(raw: string): string {
  const hash = raw.indexOf('#');
  let url = hash === -1 ? raw : raw.slice(0, hash);
  const match = USERINFO.exec(url);
  if (match) url = match[0].slice(0, match[0].indexOf('//') + 2) + url.slice(match[0].length);
  const q = url.indexOf('?');
  if (q === -1) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      if (pair === '') return pair;
      const eq = pair.indexOf('=');
      return eq === -1 ? 'redacted' : `${pair.slice(0, eq)}=redacted`;
    })
    .join('&');
  return `${url.slice(0, q)}?${query}`;
}

/** Trailing punctuation a URL in a sentence is followed by, kept out of the redaction. */
const TRAILING = /["'),.;:\]}>]+$/;

/** Every URL-looking run (scheme://… up to whitespace) in a message, redacted. */
export function redactUrlsIn(text: string): string {
  return text.replace(/\b[A-Za-z][-A-Za-z0-9+.]*:\/\/\S*/g, (found) => {
    const tail = TRAILING.exec(found)?.[0] ?? '';
    return redactUrl(found.slice(0, found.length - tail.length)) + tail;
  });
}
