// Placeholder until the controller lands (issue 4).
export async function runController(_argv: string[]): Promise<void> {
  throw new Error('the controller is not built yet');
}
