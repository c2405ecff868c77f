// PostGraphile 5 as the benchmark's peer: the bench's database, the `peer` schema (views over
// the stats tables that bench/peer.py creates), loopback only, no GraphiQL, no watch mode.
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";

const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [makePgService({ connectionString: process.env.PEER_DATABASE_URL, schemas: ["peer"] })],
  grafserv: { host: "127.0.0.1", port: Number(process.env.PEER_PORT), graphiql: false, watch: false },
  grafast: { explain: false },
};

export default preset;
