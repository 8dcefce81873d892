/* Gravitational-wave pages: how an event's numbers are shown, sky and Earth projections, the Sun's position.
 *
 * Everything here is plain functions (no DOM), shared by the events list and the event page.
 */
"use strict";

const GW = (() => {
  const SECONDS_PER_YEAR = 3.15576e7; // Julian year
  const DEG = Math.PI / 180;

  /** x rounded to 2 significant digits, written without exponent ("61", "6.1", "0.061"). */
  function twoDigits(x) {
    if (!(x > 0)) return String(x);
    const p = Math.floor(Math.log10(x)) - 1;
    const r = Math.round(x / Math.pow(10, p)) * Math.pow(10, p);
    return Number(r.toPrecision(2)).toLocaleString("en-US", { maximumFractionDigits: Math.max(0, -p) });
  }

  /**
   * A false-alarm rate (Hz) as "1 per N years": N to two significant digits, in words past a million
   * ("1 per 61 million years"); rates above once a year in months, days or hours ("1 per 3.2 days"), since
   * "1 per 0.0088 years" reads badly. null when the rate is unknown.
   */
  function farText(farHz) {
    const far = Number(farHz);
    if (farHz === null || farHz === undefined || farHz === "" || !Number.isFinite(far) || far <= 0) return null;
    const years = 1 / (far * SECONDS_PER_YEAR);
    if (years >= 1e12) {
      const exp = Math.floor(Math.log10(years));
      return `1 per ${twoDigits(years / Math.pow(10, exp))} × 10^${exp} years`;
    }
    if (years >= 1e9) return `1 per ${twoDigits(years / 1e9)} billion years`;
    if (years >= 1e6) return `1 per ${twoDigits(years / 1e6)} million years`;
    if (years >= 1) return twoDigits(years) === "1" ? "1 per year" : `1 per ${twoDigits(years)} years`;
    const days = years * 365.25;
    if (days >= 60) return `1 per ${twoDigits(days / 30.4375)} months`;
    if (days >= 2) return `1 per ${twoDigits(days)} days`;
    const hours = days * 24;
    if (hours >= 2) return `1 per ${twoDigits(hours)} hours`;
    const minutes = hours * 60;
    if (minutes >= 2) return `1 per ${twoDigits(minutes)} minutes`;
    return `1 per ${twoDigits(minutes * 60)} seconds`;
  }

  /** The false-alarm rate (Hz) of an event's properties (notices spell it FAR or far), or null. */
  function farOf(props) {
    const v = props ? props.FAR ?? props.far : null;
    return v === undefined ? null : v;
  }

  /** A probability in 0..1 as a percentage people read: "99.9%", ">99.9%", "<0.1%", "37%". */
  function percent(p) {
    const x = Number(p) * 100;
    if (!Number.isFinite(x)) return "—";
    if (x >= 99.95 && x < 100) return ">99.9%";
    if (x > 0 && x < 0.05) return "<0.1%";
    if (x >= 99 || x < 1) return x.toFixed(1).replace(/\.0$/, "") + "%";
    return Math.round(x) + "%";
  }

  /** The most probable class of a {class: probability} mapping: {name, probability}, or null. */
  function topClass(classification) {
    let best = null;
    for (const [name, p] of Object.entries(classification || {})) {
      const v = Number(p);
      if (Number.isFinite(v) && (best === null || v > best.probability)) best = { name, probability: v };
    }
    return best;
  }

  /** "BNS (>99.9%)", or null without a classification. */
  function classificationText(classification) {
    const best = topClass(classification);
    return best ? `${best.name} (${percent(best.probability)})` : null;
  }

  /** A number with about three significant digits and thousands separators ("156", "1,230", "2.5"). */
  function humane(x) {
    const v = Number(x);
    if (x === null || x === undefined || !Number.isFinite(v)) return null;
    const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
    const rounded = Math.abs(v) >= 1000 ? Number(v.toPrecision(3)) : v;
    return rounded.toLocaleString("en-US", { maximumFractionDigits: digits });
  }

  /** "156 ± 41 Mpc" (mean and standard deviation of the luminosity distance, the error as precise as the mean). */
  function distanceText(mean, std) {
    const m = humane(mean);
    if (m === null) return null;
    const sd = Number(std);
    if (std === null || std === undefined || !Number.isFinite(sd)) return `${m} Mpc`;
    const digits = Math.abs(Number(mean)) >= 100 ? 0 : Math.abs(Number(mean)) >= 10 ? 1 : 2;
    return `${m} ± ${sd.toLocaleString("en-US", { maximumFractionDigits: digits })} Mpc`;
  }

  /** An event time from the API (ISO, UTC) as "2026-06-05 11:57:26" (to the second; fractions dropped). */
  function timeText(iso) {
    if (!iso) return "—";
    const m = String(iso).match(/^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)/);
    return m ? `${m[1]} ${m[2]}` : String(iso);
  }

  /** "1,230 deg²". */
  function areaText(deg2) {
    const a = humane(deg2);
    return a === null ? null : `${a} deg²`;
  }

  /** A probability density per steradian written per square degree, to three significant digits. */
  function densityText(perSr) {
    const v = Number(perSr) * (DEG * DEG);
    if (perSr === null || perSr === undefined || !Number.isFinite(v)) return "—";
    if (v === 0) return "0";
    return v >= 0.01 ? v.toPrecision(3) : v.toExponential(2);
  }

  /** The GraceDB page of a superevent id (S..., or MS... on the playground server that holds mock events). */
  function gracedbUrl(triggerId) {
    const id = String(triggerId || "");
    if (/^S\d{6}[a-z]+$/.test(id)) return `https://gracedb.ligo.org/superevents/${id}/`;
    if (/^MS\d{6}[a-z]+$/.test(id)) return `https://gracedb-playground.ligo.org/superevents/${id}/`;
    return null;
  }

  /** The newest element of a list by `created_at` (then by position), or null. */
  function newest(items) {
    let best = null;
    for (const item of items || []) {
      if (best === null || String(item.created_at || "") >= String(best.created_at || "")) best = item;
    }
    return best;
  }

  /**
   * The event's properties as one mapping: the API's `properties` (already the newest value of each), or a
   * list of {data, created_at} merged oldest to newest (a later notice's values win).
   */
  function mergedProperties(properties) {
    if (properties && !Array.isArray(properties) && typeof properties === "object") return properties;
    const list = (properties || []).slice().sort((a, b) => String(a.created_at || "").localeCompare(String(b.created_at || "")));
    return Object.assign({}, ...list.map((p) => p.data || {}));
  }

  // -- projections ----------------------------------------------------------------------------------------
  /**
   * Mollweide projection of the sky, centred on RA 180°, RA increasing to the left as seen from inside the
   * sphere. Returns [x, y] in units where the map spans x in [-2√2, 2√2], y in [-√2, √2] (y up).
   */
  function mollweide(raDeg, decDeg) {
    const lam = (180 - raDeg) * DEG; // ra=0 on the right edge, ra=360 on the left
    const phi = decDeg * DEG;
    let theta = phi;
    if (Math.abs(Math.abs(phi) - Math.PI / 2) < 1e-9) theta = phi;
    else {
      // Newton's method on 2θ + sin 2θ = π sin φ (converges in a few steps away from the poles).
      for (let i = 0; i < 30; i++) {
        const f = 2 * theta + Math.sin(2 * theta) - Math.PI * Math.sin(phi);
        const step = f / (2 + 2 * Math.cos(2 * theta));
        theta -= step;
        if (Math.abs(step) < 1e-10) break;
      }
    }
    return [(2 * Math.SQRT2 / Math.PI) * lam * Math.cos(theta), Math.SQRT2 * Math.sin(theta)];
  }

  /**
   * Gnomonic (tangent-plane) projection around (ra0, dec0): [x, y] with x growing to the east (RA), y to the
   * north, in units of the tangent plane (tan of the angle from the centre); null on the far hemisphere.
   */
  function gnomonic(ra, dec, ra0, dec0) {
    const d = (ra - ra0) * DEG;
    const [s, c, s0, c0] = [Math.sin(dec * DEG), Math.cos(dec * DEG), Math.sin(dec0 * DEG), Math.cos(dec0 * DEG)];
    const cosc = s0 * s + c0 * c * Math.cos(d);
    if (cosc <= 1e-6) return null;
    return [(c * Math.sin(d)) / cosc, (c0 * s - s0 * c * Math.cos(d)) / cosc];
  }

  /** The angle (degrees) between two sky positions. */
  function separation(ra1, dec1, ra2, dec2) {
    const c = Math.sin(dec1 * DEG) * Math.sin(dec2 * DEG) + Math.cos(dec1 * DEG) * Math.cos(dec2 * DEG) * Math.cos((ra1 - ra2) * DEG);
    return Math.acos(Math.max(-1, Math.min(1, c))) / DEG;
  }

  /**
   * Split a line of [lon, lat] points into pieces that do not cross the map's edge (where the longitude jumps
   * by more than 180°), so that no segment is drawn across the whole map.
   */
  function splitAtWrap(points, edge) {
    const pieces = [];
    let current = [];
    let prev = null;
    for (const pt of points) {
      if (prev !== null && Math.abs(wrapTo(pt[0], edge) - wrapTo(prev[0], edge)) > 180) {
        if (current.length > 1) pieces.push(current);
        current = [];
      }
      current.push(pt);
      prev = pt;
    }
    if (current.length > 1) pieces.push(current);
    return pieces;
  }

  /** lon mapped into [edge, edge + 360). */
  function wrapTo(lon, edge) {
    return ((((lon - edge) % 360) + 360) % 360) + edge;
  }

  /** The lines of a GeoJSON geometry ([[lon, lat], ...] lists), whatever its type. */
  function geometryLines(geometry) {
    if (!geometry) return [];
    const c = geometry.coordinates;
    switch (geometry.type) {
      case "LineString": return [c];
      case "MultiLineString": return c;
      case "Polygon": return c;
      case "MultiPolygon": return c.flat(1);
      case "GeometryCollection": return (geometry.geometries || []).flatMap(geometryLines);
      default: return [];
    }
  }

  /** The credible level (50, 90, ...) of a contour feature, read from its properties. */
  function featureLevel(feature) {
    const props = (feature && feature.properties) || {};
    for (const key of ["credible_level", "level", "cumprob", "probability"]) {
      if (props[key] !== undefined && props[key] !== null) {
        const v = Number(props[key]);
        if (Number.isFinite(v)) return v <= 1 ? Math.round(v * 100) : Math.round(v);
      }
    }
    const name = String(props.name || feature.id || "");
    const m = name.match(/(\d+(?:\.\d+)?)/);
    return m ? Math.round(Number(m[1])) : null;
  }

  // -- the Sun ---------------------------------------------------------------------------------------------
  /** Julian date of a Date. */
  function julianDate(date) {
    return date.getTime() / 86400000 + 2440587.5;
  }

  /**
   * The Sun's apparent RA/Dec (degrees) and Greenwich mean sidereal time (degrees) at `date`, from the
   * Astronomical Almanac's low-precision formulae (about 0.01° on the Sun: plenty for a day/night map).
   */
  function sunPosition(date) {
    const n = julianDate(date) - 2451545.0;
    const L = (280.46 + 0.9856474 * n) % 360;
    const g = ((357.528 + 0.9856003 * n) % 360) * DEG;
    const lambda = (L + 1.915 * Math.sin(g) + 0.02 * Math.sin(2 * g)) * DEG;
    const eps = (23.439 - 0.0000004 * n) * DEG;
    const ra = Math.atan2(Math.cos(eps) * Math.sin(lambda), Math.cos(lambda)) / DEG;
    const dec = Math.asin(Math.sin(eps) * Math.sin(lambda)) / DEG;
    const gmst = wrapTo(280.46061837 + 360.98564736629 * n, 0);
    return { ra: wrapTo(ra, 0), dec, gmst };
  }

  /** The point on Earth where the Sun is overhead: {lat, lon} in degrees (lon east, in [-180, 180)). */
  function subsolarPoint(date) {
    const sun = sunPosition(date);
    return { lat: sun.dec, lon: wrapTo(sun.ra - sun.gmst, -180) };
  }

  /** The Sun's altitude (degrees) seen from (lat, lon east) at `date` (`subsolar`: subsolarPoint(date), if known). */
  function sunAltitude(lat, lon, date, subsolar) {
    const s = subsolar || subsolarPoint(date);
    const h = (lon - s.lon) * DEG;
    const sinAlt = Math.sin(lat * DEG) * Math.sin(s.lat * DEG) + Math.cos(lat * DEG) * Math.cos(s.lat * DEG) * Math.cos(h);
    return Math.asin(Math.max(-1, Math.min(1, sinAlt))) / DEG;
  }

  /** The altitude (degrees, geometric) of a sky position (RA, Dec) seen from (lat, lon east) at `date`. */
  function altitude(ra, dec, lat, lon, date) {
    const z = zenithPoint(ra, dec, date);
    const h = (lon - z.lon) * DEG;
    const sinAlt = Math.sin(lat * DEG) * Math.sin(dec * DEG) + Math.cos(lat * DEG) * Math.cos(dec * DEG) * Math.cos(h);
    return Math.asin(Math.max(-1, Math.min(1, sinAlt))) / DEG;
  }

  /** Where a sky position (RA, Dec) is at the zenith at `date`: {lat, lon} on Earth (lon east). */
  function zenithPoint(ra, dec, date) {
    const sun = sunPosition(date);
    return { lat: dec, lon: wrapTo(ra - sun.gmst, -180) };
  }

  return {
    SECONDS_PER_YEAR, farText, farOf, percent, topClass, classificationText, distanceText, timeText, areaText, densityText, humane, gracedbUrl,
    newest, mergedProperties, mollweide, gnomonic, separation, splitAtWrap, wrapTo, geometryLines, featureLevel, sunPosition,
    subsolarPoint, sunAltitude, zenithPoint, altitude,
  };
})();
