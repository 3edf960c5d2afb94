// src/graphql/*.graphql are bundled as text (build.mjs: the graphql-documents plugin).
declare module "*.graphql" {
  const document: string;
  export default document;
}
