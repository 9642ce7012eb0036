# Build: docker build -t pulse .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# make image stamps the version pulse version prints; by hand:
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t pulse .
ARG VERSION=dev
ARG LDFLAGS="-X main.version=${VERSION}"
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "${LDFLAGS}" -o /pulse ./cmd/pulse

FROM gcr.io/distroless/static-debian12
COPY --from=build /pulse /pulse
VOLUME /data
# The embedded broker listens on every interface and tells clients to
# connect to localhost:9092, right for clients on the Docker host with
# docker run -p 9092:9092. For clients on other hosts or containers set
# -e PULSE_KAFKA_ADVERTISE=host:port (deploy/compose.embedded.yaml does).
ENV PULSE_KAFKA_LISTEN=0.0.0.0:9092 PULSE_KAFKA_ADVERTISE=localhost:9092
EXPOSE 8080 9092
# --http on 0.0.0.0 answers any Host name (the container is reached by
# whatever name); Go's profiler is not served unless --debug-listen is
# added, and then keep it on 127.0.0.1 inside the container.
ENTRYPOINT ["/pulse", "run", "--data-dir", "/data", "--http", "0.0.0.0:8080"]
