# Reference numbers for cementleak_stats.outcomes (tests/test_outcomes.py).
# R 4.2 (stats, nlme). Run from the repository root:
#   Rscript tests/reference/outcomes.R
# Writes tests/reference/outcomes_fixture.csv (the input, long format) and
# tests/reference/outcomes_r.json (the results). The fixture is written first and read
# back, so R and Python compute on exactly the same parsed numbers.
suppressPackageStartupMessages({library(jsonlite); library(nlme)})
here <- "tests/reference"
set.seed(20250427)

# ---- fixture: 27 patients x 3 visits, two measures -------------------------------------
# 'pain' (0-10 integers: many ties and zero differences -> normal approximation) and
# 'disab' (percent with two decimals: no ties -> exact signed-rank P for n < 50).
# Patient 27 misses the last visit (pairwise tests use the available pairs; Friedman and
# repeated-measures ANOVA use complete cases only).
n <- 27
pain_pre <- pmin(10, pmax(0, round(rnorm(n, 7, 1.3))))
pain_d3 <- pmin(10, pmax(0, pain_pre - round(rnorm(n, 3, 1.4))))
pain_m12 <- pmin(10, pmax(0, pain_d3 - round(rnorm(n, 1, 1.2))))
pain_d3[c(3, 8)] <- pain_pre[c(3, 8)]          # guaranteed zero differences pre vs day 3
dis_pre <- round(rnorm(n, 62, 9), 2)
dis_d3 <- round(dis_pre - rnorm(n, 6, 9), 2)
dis_m12 <- round(dis_d3 - rnorm(n, 14, 8), 2)
long <- data.frame(
  pid = rep(sprintf("P%02d", 1:n), each = 3),
  visit = rep(c("base", "d3", "m12"), times = n),
  pain = as.vector(rbind(pain_pre, pain_d3, pain_m12)),
  disab = as.vector(rbind(dis_pre, dis_d3, dis_m12))
)
long[long$pid == "P27" & long$visit == "m12", c("pain", "disab")] <- NA
write.csv(long, file.path(here, "outcomes_fixture.csv"), row.names = FALSE, na = "")
long <- read.csv(file.path(here, "outcomes_fixture.csv"), stringsAsFactors = FALSE)

visits <- c("base", "d3", "m12")
pairs <- list(c("base", "d3"), c("base", "m12"), c("d3", "m12"))
out <- list()
for (m in c("pain", "disab")) {
  wide <- reshape(long[, c("pid", "visit", m)], idvar = "pid", timevar = "visit", direction = "wide")
  y <- as.matrix(wide[, paste0(m, ".", visits)])
  cc <- y[complete.cases(y), , drop = FALSE]
  fr <- friedman.test(cc)
  # repeated-measures ANOVA (sphericity assumed), complete cases
  dl <- long[long$pid %in% wide$pid[complete.cases(y)], c("pid", "visit", m)]
  names(dl)[3] <- "value"
  dl$pid <- factor(dl$pid); dl$visit <- factor(dl$visit, levels = visits)
  av <- summary(aov(value ~ visit + Error(pid / visit), data = dl))
  tab <- av[["Error: pid:visit"]][[1]]
  # linear mixed model, random intercept, REML, all available observations
  da <- long[!is.na(long[[m]]), c("pid", "visit", m)]
  names(da)[3] <- "value"
  da$visit <- factor(da$visit, levels = visits)
  fit <- lme(value ~ visit, random = ~ 1 | pid, data = da, method = "REML")
  fe <- summary(fit)$tTable
  rows <- list()
  wil_p <- c(); t_p <- c()
  for (pr in pairs) {
    a <- y[, paste0(m, ".", pr[1])]; b <- y[, paste0(m, ".", pr[2])]
    ok <- !is.na(a) & !is.na(b)
    # difference is later minus earlier: wilcox.test(b, a, paired = TRUE) -> V = sum of ranks of b - a > 0
    w <- suppressWarnings(wilcox.test(b[ok], a[ok], paired = TRUE))
    d <- b[ok] - a[ok]
    dz <- d[d != 0]
    tt <- t.test(b[ok], a[ok], paired = TRUE)
    rows[[length(rows) + 1]] <- list(
      comparison = paste(pr[2], "vs", pr[1]), n_pairs = sum(ok), n_nonzero = length(dz),
      ties = length(unique(rank(abs(dz)))) != length(dz), zeros = any(d == 0),
      wilcoxon_v = unname(w$statistic), wilcoxon_p = w$p.value,
      t = unname(tt$statistic), t_df = unname(tt$parameter), t_p = tt$p.value,
      mean_diff = mean(d), sd_diff = sd(d))
    wil_p <- c(wil_p, w$p.value); t_p <- c(t_p, tt$p.value)
  }
  wa <- p.adjust(wil_p, method = "holm"); ta <- p.adjust(t_p, method = "holm")
  for (i in seq_along(rows)) { rows[[i]]$wilcoxon_p_holm <- wa[i]; rows[[i]]$t_p_holm <- ta[i] }
  out[[m]] <- list(
    friedman = list(statistic = unname(fr$statistic), df = unname(fr$parameter), p = fr$p.value, n = nrow(cc)),
    rm_anova = list(F = tab[1, "F value"], df1 = tab[1, "Df"], df2 = tab[2, "Df"], p = tab[1, "Pr(>F)"],
                    ss_time = tab[1, "Sum Sq"], ss_error = tab[2, "Sum Sq"]),
    lme = list(term = rownames(fe), estimate = unname(fe[, "Value"]), se = unname(fe[, "Std.Error"]),
               n_obs = nrow(da),
               # joint Wald test of the visit terms with vcov(fit) = sigma^2 (X'V^-1X)^-1:
               # anova.lme's marginal F times its numerator df is the Wald chi-square
               visit_F = anova(fit, type = "marginal")["visit", "F-value"],
               visit_numDF = anova(fit, type = "marginal")["visit", "numDF"],
               sigma2 = fit$sigma^2, tau2 = as.numeric(getVarCov(fit))),
    pairwise = rows)
}

# ---- extra signed-rank cases: the branches of wilcox.test's P value ---------------------
cases <- list(
  n60_no_ties = list(x = round(seq(1, 60) * 1.37 %% 11 + (1:60) / 100, 4), y = rep(5, 60)),
  small_exact = list(x = c(1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30),
                     y = c(0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29)),
  ties_zero = list(x = c(3, 5, 5, 2, 7, 4, 4, 6), y = c(2, 3, 3, 2, 4, 5, 2, 3))
)
wil <- lapply(cases, function(cs) {
  w <- suppressWarnings(wilcox.test(cs$x, cs$y, paired = TRUE))
  list(x = cs$x, y = cs$y, v = unname(w$statistic), p = w$p.value)
})
holm_in <- c(0.01, 0.04, 0.03, 0.005, NA, 0.2)
res <- list(R = R.version.string, outcomes = out, wilcoxon_cases = wil,
            holm = list(p = holm_in, adjusted = p.adjust(holm_in, method = "holm")))
write_json(res, file.path(here, "outcomes_r.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
