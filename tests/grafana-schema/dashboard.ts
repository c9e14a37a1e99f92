// The type dashboards/*.json must satisfy: Grafana's own dashboard types from @grafana/schema, with the
// panel options of each panel plugin the dashboards use. scripts/lib/dashboards.py writes every dashboard
// as `export default {...} satisfies Dashboard` and type-checks it with `tsc --strict` (a JSON import
// would widen literals and skip the excess-property check).
//
// Pins (package.json): @grafana/schema 11.1.13, the last patch of 11.1, the first release whose dashboard
// kind says `schemaVersion: 39` (10.x and 11.0 still say 36; 11.6 says 41) — the dashboards' version.
// typescript 5.4.5 is the compiler that package was built with.
//
// The package types a panel's `options` and `fieldConfig.defaults.custom` as open records; here they are
// the panel plugin's own types from the same package, exactly (no index signature: a misspelt key fails).
// A panel type missing from `Panel` below fails the check: add its plugin's types (raw/composable/<plugin>).
//
// Overlay: where the JSON cannot spell the type or the types are wrong about what Grafana reads, and
// nothing more. Each entry is the narrowest fix; every other field is the package's type unchanged.
// - Enums (FieldColorModeId, ThresholdsMode, MappingType, ...) become their values: JSON holds the
//   string "absolute", never ThresholdsMode.Absolute. A misspelt value still fails.
// - Panel links are data links {title, url, targetBlank?} (the package's own v2 schema calls them
//   DataLink); the v1 types reuse the dashboard-level DashboardLink with its asDropdown, icon, tags.
// - A query variable's `definition` (the query as the variables list shows it; in the v2 schema).
// - A Prometheus annotation's target ({expr, interval, refId}) and its display fields (tagKeys,
//   titleFormat, textFormat, useValueForTime), as Grafana's Prometheus annotation support reads them;
//   the types allow only the built-in Grafana target.
import type * as G from '@grafana/schema';
import type * as BarGauge from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type * as Stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as Table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as TimeSeries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

type Json<T> = T extends string ? `${T}` : T extends (infer U)[] ? Json<U>[] : T extends object ? { [K in keyof T]: Json<T[K]> } : T;

type DataLink = { title: string; url: string; targetBlank?: boolean };
type PanelOf<Type extends string, Options, Custom = Record<string, unknown>> =
  Omit<G.Panel, 'type' | 'options' | 'links' | 'fieldConfig'> & { type: Type; options?: Options; links?: DataLink[];
    fieldConfig?: Omit<G.FieldConfigSource, 'defaults'> & { defaults: Omit<G.FieldConfig, 'custom'> & { custom?: Custom } } };
type Panel =
  | PanelOf<'timeseries', TimeSeries.Options, TimeSeries.FieldConfig>
  | PanelOf<'stat', Stat.Options>
  | PanelOf<'bargauge', BarGauge.Options>
  | PanelOf<'table', Table.Options, Table.FieldConfig>;
type RowPanel = Omit<G.RowPanel, 'panels'> & { panels: Panel[] };

type PromTarget = G.DataQuery & { expr: string; interval?: string };
type Annotation = G.AnnotationQuery<PromTarget> &
  { tagKeys?: string; titleFormat?: string; textFormat?: string; useValueForTime?: boolean };

export type Dashboard = Json<Omit<G.Dashboard, 'panels' | 'templating' | 'annotations'> & {
  panels?: (Panel | RowPanel)[];
  templating?: { list?: (G.VariableModel & { definition?: string })[] };
  annotations?: { list?: Annotation[] };
}>;
