/** z3's version, recorded in the metadata of every object it writes. */
export const VERSION = "0.1.0";
