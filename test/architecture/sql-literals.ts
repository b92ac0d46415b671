import path from 'node:path';
import ts from 'typescript';

/** Text that opens an SQL statement (checked at the start of a string or template literal). */
export const SQL_STATEMENT_START = new RegExp(
  '^\\s*(?:' +
    [
      'select\\s',
      'insert\\s+into\\s',
      'update\\s+[\\w."]+\\s+set\\s',
      'delete\\s+from\\s',
      'with\\s+(?:recursive\\s+)?[\\w"]+\\s*(?:\\([^)]*\\)\\s*)?as\\s*(?:not\\s+)?(?:materialized\\s*)?\\(',
      'lock\\s+(?:table\\s)?[\\w."]+\\s+in\\s',
      'lock\\s+table\\s',
      'merge\\s+into\\s',
      'truncate\\s',
      'create\\s+(?:or\\s+replace\\s+)?(?:unique\\s+)?(?:table|index|view|function|extension|schema|type|sequence|trigger)\\s',
      'alter\\s+(?:table|index|type|sequence|schema)\\s',
      'drop\\s+(?:table|index|type|view|function|sequence|schema|extension)\\s',
      'set\\s+(?:local\\s+|session\\s+)?[\\w.]+\\s*(?:=|to\\s)',
      '(?:begin|commit|rollback)(?:\\s+transaction)?\\s*;?\\s*$',
    ].join('|') +
    ')',
  'i',
);

export interface SqlLiteral {
  file: string;
  /** 1-based line of the literal's first character. */
  line: number;
  /** The first line of the statement, for the failure message. */
  excerpt: string;
  /** A comment line heads the paragraph of code that holds the literal (see hasReasonAbove). */
  hasReasonAbove: boolean;
}

/** Every string or template literal of a TypeScript file that opens an SQL statement. */
export function findSqlLiterals(file: string, sourceText: string): SqlLiteral[] {
  const source = ts.createSourceFile(file, sourceText, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: SqlLiteral[] = [];
  const visit = (node: ts.Node) => {
    const text = literalText(node);
    if (text !== undefined && SQL_STATEMENT_START.test(text)) {
      found.push({
        file,
        line: lineOf(source, node.getStart(source)) + 1,
        excerpt: text.trim().split('\n')[0]!.slice(0, 100),
        hasReasonAbove: hasReasonAbove(source, node),
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function literalText(node: ts.Node): string | undefined {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  // Placeholders stand in as one word, so `update ${table} set` still reads as a statement.
  if (ts.isTemplateExpression(node)) return node.head.text + node.templateSpans.map((s) => `x${s.literal.text}`).join('');
  return undefined;
}

/**
 * A reason heads the paragraph that holds the statement: walking up from the literal, a comment
 * line comes before any blank line and before the function's opening line. One comment may so
 * explain a run of consecutive statements (two deletes in one transaction), and a function's doc
 * comment never counts as the reason for the statement inside it.
 */
function hasReasonAbove(source: ts.SourceFile, literal: ts.Node): boolean {
  const lines = source.text.split('\n');
  const floor = enclosingBodyLine(source, literal);
  for (let line = lineOf(source, literal.getStart(source)) - 1; line > floor; line--) {
    const text = lines[line]!.trim();
    if (text === '') return false;
    if (text.startsWith('//') || text.startsWith('/*') || text.startsWith('*') || text.endsWith('*/')) return true;
  }
  return false;
}

/** The line of the `{` that opens the nearest function body around the node, or -1 at top level. */
function enclosingBodyLine(source: ts.SourceFile, node: ts.Node): number {
  for (let n = node.parent; n; n = n.parent) {
    if (ts.isFunctionLike(n) && 'body' in n && n.body && ts.isBlock(n.body as ts.Node)) {
      return lineOf(source, (n.body as ts.Block).getStart(source));
    }
  }
  return -1;
}

function lineOf(source: ts.SourceFile, pos: number): number {
  return source.getLineAndCharacterOfPosition(pos).line;
}

/** L7: SQL text may sit in `*-store.ts` files and under persistence/ (migrations, ping, embedded). */
export function mayHoldSql(file: string): boolean {
  return path.posix.basename(file).endsWith('-store.ts') || file.startsWith('src/identity/persistence/');
}

/** Stores explain each hand-written statement; persistence/ is SQL by nature (migrations, ping). */
export function needsReasonAbove(file: string): boolean {
  return path.posix.basename(file).endsWith('-store.ts');
}
