# Reference logistic regression for cementleak_stats.checks.logistic_sensitivity
# (tests/test_checks.py). R 4.2 (stats). Run from the repository root:
#   Rscript tests/reference/checks.R
# Writes checks_fixture.csv (input) and checks_glm_r.csv (coefficients).
# Outcome: event at or before 12 months; patients censored before 12 are excluded.
here <- "tests/reference"
set.seed(1957)
n <- 120
d <- data.frame(
  pid = sprintf("C%03d", 1:n),
  dens = round(rnorm(n, 90, 25), 1),
  sev = sample(c("lo", "mid", "hi"), n, replace = TRUE, prob = c(0.4, 0.4, 0.2)),
  wall2 = sample(c("no", "yes"), n, replace = TRUE, prob = c(0.7, 0.3)),
  loc = sample(c("top", "mid", "bot"), n, replace = TRUE),
  stringsAsFactors = FALSE
)
lp <- -0.5 - 0.03 * (d$dens - 90) + 0.6 * (match(d$sev, c("lo", "mid", "hi")) - 1) +
  1.0 * (d$wall2 == "yes") + 0.4 * (d$loc == "bot")
t_ev <- rexp(n, exp(lp) / 30)
t_c <- ifelse(runif(n) < 0.1, runif(n, 0.5, 12), 24)      # some censored before 12
d$months <- round(pmin(t_ev, t_c, 24), 2)
d$leak <- as.integer(t_ev <= pmin(t_c, 24))
d$dens[c(4, 9)] <- NA                                      # complete-case analysis
write.csv(d, file.path(here, "checks_fixture.csv"), row.names = FALSE, na = "")
d <- read.csv(file.path(here, "checks_fixture.csv"), stringsAsFactors = FALSE)

d$y <- as.integer(d$leak == 1 & d$months <= 12)
keep <- !(d$leak == 0 & d$months < 12) & !is.na(d$dens)
s <- d[keep, ]
s$sev_score <- match(s$sev, c("lo", "mid", "hi")) - 1      # ordinal coded as a score
s$wall2 <- as.integer(s$wall2 == "yes")
s$loc <- factor(s$loc, levels = c("mid", "top", "bot"))    # reference "mid"
fit <- glm(y ~ dens + sev_score + wall2 + loc, family = binomial, data = s,
           control = glm.control(epsilon = 1e-12, maxit = 100))
co <- summary(fit)$coefficients
ci <- confint.default(fit)
out <- data.frame(term = rownames(co), coef = co[, 1], se = co[, 2], z = co[, 3], p = co[, 4],
                  or = exp(co[, 1]), ci_low = exp(ci[, 1]), ci_high = exp(ci[, 2]))
write.csv(out, file.path(here, "checks_glm_r.csv"), row.names = FALSE)
cat("n used:", nrow(s), " events:", sum(s$y), " censored<12 excluded:", sum(d$leak == 0 & d$months < 12),
    " missing excluded:", sum(is.na(d$dens) & !(d$leak == 0 & d$months < 12)), "\n")
print(out)
