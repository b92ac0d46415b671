import { escapeHtml } from './escape.js';

/** One rendered mail: the same content as plain text and as HTML. */
export interface RenderedMail {
  to: string;
  subject: string;
  text: string;
  html: string;
}

/** A paragraph of the body; `href` makes the text a link in HTML and appends the URL in text. */
export interface Paragraph {
  text: string;
  href?: string;
}

/**
 * Builds both bodies from one list of paragraphs, so the text and HTML versions cannot drift
 * apart, and every value is escaped in exactly one place.
 */
export function composeMail(to: string, subject: string, paragraphs: Paragraph[]): RenderedMail {
  const text = paragraphs.map((p) => (p.href ? `${p.text}\n${p.href}` : p.text)).join('\n\n');
  const body = paragraphs
    .map((p) =>
      p.href
        ? `<p>${escapeHtml(p.text)}<br><a href="${escapeHtml(p.href)}">${escapeHtml(p.href)}</a></p>`
        : `<p>${escapeHtml(p.text)}</p>`,
    )
    .join('\n');
  const html = `<!doctype html>\n<html><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head>\n<body>\n${body}\n</body></html>\n`;
  return { to, subject, text: `${text}\n`, html };
}

/** "2026-11-27 20:59 UTC": unambiguous for a reader anywhere. */
export function formatTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}
