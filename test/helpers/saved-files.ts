/**
 * The files of a small directory save whose every file names its version (crash and replace tests). Its
 * state.json and cfg.json have the fields that make it recognisably a training run's checkpoint (own-directory.ts).
 */
export function savedFiles(version: string): Record<string, string> {
  return {
    'image/sae_weights.safetensors': `weights ${version} `.repeat(200),
    'image/cfg.json': JSON.stringify({ cmsae: { format_version: 1 }, version }),
    'state.json': JSON.stringify({ format_version: 1, step: 0, version }),
  };
}
