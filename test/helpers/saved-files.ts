/** The files of a small directory save whose every file names its version (crash and replace tests). */
export function savedFiles(version: string): Record<string, string> {
  return {
    'image/sae_weights.safetensors': `weights ${version} `.repeat(200),
    'image/cfg.json': JSON.stringify({ version }),
    'state.json': JSON.stringify({ version }),
  };
}
