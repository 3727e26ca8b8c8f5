/*
 * svg.c: the chart of tempomxctl stats --svg, written directly as SVG
 * (no external program): one stacked bar per day of what happened to the
 * mail offered (accepted into hi, accepted into lo, tempfailed, refused
 * by timing, refused as predicted junk, viruses), the day's total above
 * its bar, a y axis with a few round ticks, axis labels and a legend, in
 * the spirit of the paper's overview of mail types per day. Each day is
 * a group <g class="day" data-day="..." data-total="..."> whose
 * rectangles carry data-type and data-count, so that a program can read
 * the numbers back from the picture.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

#define W_LEFT 70
#define W_RIGHT 190 /* the legend */
#define H_TOP 40
#define H_BOTTOM 70
#define H_PLOT 300
#define BAR_MIN 12
#define BAR_MAX 48

struct segment {
	const char *type; /* data-type */
	const char *label;
	const char *color;
};

static const struct segment segments[] = {
    {"accepted_hi", "accepted, hi", "#2e7d32"},
    {"accepted_lo", "accepted, lo", "#9ccc65"},
    {"tempfailed", "tempfailed", "#ffb300"},
    {"refused_timing", "refused by timing", "#e53935"},
    {"refused_junk", "refused as predicted junk", "#8e24aa"},
    {"viruses", "viruses", "#212121"},
};
#define NSEG (sizeof(segments) / sizeof(segments[0]))

static void counts(const uint64_t *v, uint64_t out[NSEG])
{
	out[0] = v[STAT_ACCEPTED_HI];
	out[1] = v[STAT_ACCEPTED_LO];
	out[2] = v[STAT_TEMPFAIL_NEW] + v[STAT_TEMPFAIL_JUNK] + v[STAT_TEMPFAIL_TIMING] +
	         v[STAT_TEMPFAIL_LOAD];
	out[3] = v[STAT_REFUSED_PREGREET] + v[STAT_REFUSED_PIPELINING] + v[STAT_REFUSED_PATIENCE] +
	         v[STAT_REFUSED_NON_SMTP] + v[STAT_REFUSED_BARE_LF] + v[STAT_REFUSED_TIMING_OTHER];
	out[4] = v[STAT_REFUSED_JUNK];
	out[5] = v[STAT_VIRUS];
}

/* A round step for about four ticks up to max. */
static uint64_t tick_step(uint64_t max)
{
	uint64_t step = 1;
	while (step * 10 <= max / 4 + 1)
		step *= 10;
	if (step * 5 <= max / 4 + 1)
		step *= 5;
	else if (step * 2 <= max / 4 + 1)
		step *= 2;
	return step;
}

void svg_chart(FILE *fp, const struct ctl_day *days, size_t n)
{
	uint64_t max = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t c[NSEG], t = 0;
		counts(days[i].v, c);
		for (size_t k = 0; k < NSEG; k++)
			t += c[k];
		if (t > max)
			max = t;
	}
	uint64_t step = tick_step(max);
	uint64_t top = max == 0 ? step * 4 : ((max + step - 1) / step) * step;
	int slot = n * BAR_MAX * 3 / 2 > 900 ? (int)(900 / n) : BAR_MAX * 3 / 2;
	if (slot < BAR_MIN + 4)
		slot = BAR_MIN + 4;
	int bar = slot * 2 / 3;
	int width = W_LEFT + (int)n * slot + W_RIGHT;
	int height = H_TOP + H_PLOT + H_BOTTOM;
	int base = H_TOP + H_PLOT;

	fprintf(fp, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	fprintf(fp,
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	        "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n",
	        width, height, width, height);
	fprintf(fp, "<title>tempomx: mail per day (%s to %s, UTC)</title>\n", n ? days[0].day : "",
	        n ? days[n - 1].day : "");
	fprintf(fp, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", width, height);
	fprintf(fp,
	        "<text x=\"%d\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Mail per day, "
	        "by what tempomx did with it</text>\n",
	        W_LEFT);

	/* The y axis: ticks and grid lines. */
	fprintf(fp, "<g class=\"y-axis\">\n");
	for (uint64_t t = 0; t <= top; t += step) {
		int y = base - (int)((double)t / (double)top * H_PLOT);
		fprintf(fp,
		        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#dddddd\"/>"
		        "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%llu</text>\n",
		        W_LEFT, y, W_LEFT + (int)n * slot, y, W_LEFT - 6, y + 4,
		        (unsigned long long)t);
	}
	fprintf(fp,
	        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n"
	        "<text transform=\"translate(16,%d) rotate(-90)\" text-anchor=\"middle\">"
	        "messages and connections refused</text>\n</g>\n",
	        W_LEFT, H_TOP, W_LEFT, base, H_TOP + H_PLOT / 2);

	/* One group per day. */
	for (size_t i = 0; i < n; i++) {
		uint64_t c[NSEG], total = 0;
		counts(days[i].v, c);
		for (size_t k = 0; k < NSEG; k++)
			total += c[k];
		int x = W_LEFT + (int)i * slot + (slot - bar) / 2;
		fprintf(fp, "<g class=\"day\" data-day=\"%s\" data-total=\"%llu\">\n", days[i].day,
		        (unsigned long long)total);
		double y = base;
		for (size_t k = 0; k < NSEG; k++) {
			double h = (double)c[k] / (double)top * H_PLOT;
			y -= h;
			fprintf(fp,
			        "<rect class=\"seg\" data-type=\"%s\" data-count=\"%llu\" x=\"%d\" "
			        "y=\"%.2f\" width=\"%d\" height=\"%.2f\" fill=\"%s\">"
			        "<title>%s %s: %llu</title></rect>\n",
			        segments[k].type, (unsigned long long)c[k], x, y, bar, h,
			        segments[k].color, days[i].day, segments[k].label,
			        (unsigned long long)c[k]);
		}
		fprintf(fp,
		        "<text class=\"total\" x=\"%d\" y=\"%.2f\" "
		        "text-anchor=\"middle\">%llu</text>\n",
		        x + bar / 2, y - 4, (unsigned long long)total);
		/* MM-DD under the bar; the year is in the title. */
		fprintf(fp,
		        "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" "
		        "transform=\"rotate(-45 %d %d)\">%s</text>\n</g>\n",
		        x + bar / 2, base + 14, x + bar / 2, base + 14, days[i].day + 5);
	}
	fprintf(fp,
	        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n"
	        "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">day (UTC)</text>\n",
	        W_LEFT, base, W_LEFT + (int)n * slot, base, W_LEFT + (int)n * slot / 2,
	        height - 10);

	/* The legend, top of the stack first as in the bars. */
	int lx = W_LEFT + (int)n * slot + 20;
	fprintf(fp, "<g class=\"legend\">\n");
	for (size_t k = 0; k < NSEG; k++) {
		size_t j = NSEG - 1 - k;
		int ly = H_TOP + 10 + (int)k * 20;
		fprintf(fp,
		        "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
		        "<text x=\"%d\" y=\"%d\">%s</text>\n",
		        lx, ly, segments[j].color, lx + 18, ly + 10, segments[j].label);
	}
	fprintf(fp, "</g>\n</svg>\n");
}
