/** The `hugevisor` command line. */
export async function main(argv: string[]): Promise<number> {
  process.stderr.write(`error: not implemented yet: ${argv.join(' ')}\n`);
  return 2;
}
