// Adapters shown with their base: the library's rows in its order, each adapter moved to just after its base (an
// adapter whose base is not listed stays where it was).
import type { LibraryModel } from './bindings';

export function withAdaptersUnderBases(models: LibraryModel[]): LibraryModel[] {
  const listed = new Set(models.map((m) => m.id));
  const under = (m: LibraryModel) => m.adapter?.base && listed.has(m.adapter.base);
  const out: LibraryModel[] = [];
  for (const m of models) {
    if (under(m)) continue;
    out.push(m);
    out.push(...models.filter((a) => under(a) && a.adapter?.base === m.id));
  }
  return out;
}
