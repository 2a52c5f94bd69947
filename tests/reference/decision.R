# Reference net benefit for cementleak_stats.decision (tests/test_decision.py).
# R 4.2, survival 3.5. Run from the repository root:  Rscript tests/reference/decision.R
# Writes decision_fixture.csv (risk, time, event) and decision_r.csv (per threshold).
# Net benefit (Vickers et al. 2008) with Kaplan-Meier risks from survival::survfit, evaluated
# at u = 12 with summary(..., times = 12): events at 12 count, patients censored at 12 are
# at risk there.
suppressPackageStartupMessages(library(survival))
here <- "tests/reference"
set.seed(2008)
n <- 80
x <- rnorm(n)
risk <- round(plogis(-1.2 + 1.1 * x), 4)
haz <- -log(1 - pmin(risk, 0.95)) / 12
t_ev <- rexp(n, haz)
t_cens <- ifelse(runif(n) < 0.12, runif(n, 1, 12), Inf)     # some censored before 12
time <- pmin(t_ev, t_cens, 12)
event <- as.integer(t_ev <= pmin(t_cens, 12))
time <- ceiling(time * 2) / 2                                # half-month grid: ties
event[time == 12 & event == 1] <- 1L
event[c(3, 11)] <- 1L; time[c(3, 11)] <- 12                  # events exactly at the horizon
d <- data.frame(risk = risk, time = time, event = event)
write.csv(d, file.path(here, "decision_fixture.csv"), row.names = FALSE)
d <- read.csv(file.path(here, "decision_fixture.csv"))

km12 <- function(s) {
  if (nrow(s) == 0) return(NA_real_)
  f <- survfit(Surv(time, event) ~ 1, data = s)
  v <- summary(f, times = 12, extend = TRUE)$surv
  if (max(s$time) < 12 && v > 0) NA_real_ else v
}
pts <- as.numeric(sprintf("%.2f", seq(0.01, 0.60, by = 0.01)))
s_all <- km12(d)
res <- do.call(rbind, lapply(pts, function(pt) {
  w <- pt / (1 - pt)
  pos <- d[d$risk >= pt, ]
  k <- nrow(pos)
  nb <- if (k == 0) 0 else { s <- km12(pos); (1 - s) * k / n - s * k / n * w }
  nb_all <- (1 - s_all) - s_all * w
  data.frame(threshold = pt, net_benefit_model = nb, net_benefit_all = nb_all,
             interventions_avoided = (nb - nb_all) / w * 100, n_treated = k)
}))
write.csv(res, file.path(here, "decision_r.csv"), row.names = FALSE)
cat("S_KM(12) overall:", s_all, " events:", sum(d$event), " censored<12:", sum(d$event == 0 & d$time < 12), "\n")
